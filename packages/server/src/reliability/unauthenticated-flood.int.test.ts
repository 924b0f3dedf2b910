/**
 * Unauthenticated clients cannot grow the hub's memory or hold its connections: a hub process
 * (measured from /proc as a child) gets 1,500 concurrent pushes without a key, each announcing and
 * sending 1 MB; they are refused before their bodies are read (401, connection closed), the
 * process's peak RSS stays under 400 MB and its RSS ends near idle. Clients that trickle their
 * headers, or their body after valid credentials, are closed by the headers and body timeouts.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHub } from '../pipeline/hub.ts';
import { API_KEY, type HubChild, INSTANCE, SECRET_KEY, spawnHub } from './support.test-support.ts';

const database = useTestDatabase();
const MB = 1 << 20;
const CONNECTIONS = 1500;
let hub: HubChild;
let port: number;

/** VmRSS (now) and VmHWM (peak since start) of a process, in MB. */
function memoryOf(pid: number): { rssMb: number; peakMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  const memory = { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
  if (Number.isNaN(memory.rssMb))
    throw new Error(`the hub process ${pid} is gone:\n${hub.output().slice(-2000)}`);
  return memory;
}

interface Outcome {
  /** The answer's status, 0 when the hub closed without answering. */
  status: number;
  /** When the socket closed, ms after it was opened. */
  closedAfterMs: number;
}

/** Opens a connection, sends `head` and then `body` at once, and reports the answer and the close. */
function send(head: string, body: Buffer): Promise<Outcome> {
  return new Promise((resolve) => {
    const opened = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let first = '';
    socket.on('data', (chunk: Buffer) => {
      if (first.length < 16) first += chunk.toString('latin1');
    });
    socket.on('error', () => {}); // EPIPE / ECONNRESET when the hub closes before the body is sent
    socket.on('close', () =>
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(first)?.[1] ?? 0),
        closedAfterMs: Date.now() - opened,
      }),
    );
    socket.write(head);
    socket.write(body);
  });
}

/** Opens a connection that sends `head`, then `drip` one byte every `everyMs` until the hub closes it. */
function trickle(head: string, drip: string, everyMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const opened = Date.now();
    const socket = net.connect(port, '127.0.0.1');
    let first = '';
    let i = 0;
    socket.on('data', (chunk: Buffer) => {
      if (first.length < 16) first += chunk.toString('latin1');
    });
    socket.on('error', () => {});
    const timer = setInterval(() => {
      if (!socket.destroyed) socket.write(drip[i++ % drip.length]!);
    }, everyMs);
    socket.on('close', () => {
      clearInterval(timer);
      resolve({
        status: Number(/^HTTP\/1\.1 (\d{3})/.exec(first)?.[1] ?? 0),
        closedAfterMs: Date.now() - opened,
      });
    });
    socket.write(head);
  });
}

async function countStored(): Promise<number> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: database.url() });
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      'select count(*) as n from switchyard.inbound_messages',
    );
    return Number(rows[0]!.n);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  const setup = await createHub({
    databaseUrl: database.url(),
    connectors: [(await import('./connector.test-support.ts')).relConnector],
    secretKey: SECRET_KEY,
    logger: pino({ level: 'silent' }),
    options: { workers: false, queue: false },
  });
  await setup.instances.upsert({ id: INSTANCE, connector: 'reltest', settings: { apiKey: API_KEY } });
  await setup.stop();
  hub = await spawnHub({
    databaseUrl: database.url(),
    secretKey: SECRET_KEY,
    logLevel: 'warn',
    // Larger than the pushes: without the check before the body, each 1 MB body is read whole.
    bodyLimit: 2 * MB,
    timeouts: { headersMs: 5_000, bodyMs: 3_000, requestMs: 20_000 },
  });
  port = Number(new URL(hub.base).port);
}, 60_000);

afterAll(async () => {
  await hub?.stop();
});

/** What the process may keep above its idle footprint once a flood is over, MiB (see the test). */
const RETAINED_MB = 150;

it('refuses 1,500 keyless 1 MB pushes without holding their bodies, and closes trickling clients', {
  timeout: 90_000,
}, async () => {
  // Warm up with real pushes, then take the idle footprint.
  for (let n = 0; n < 20; n++) {
    const res = await fetch(`${hub.base}/hooks/${INSTANCE}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      body: JSON.stringify({ id: `warm-${n}`, subject: 's' }),
    });
    expect(res.status).toBe(202);
  }
  const idle = memoryOf(hub.pid);
  const stored = await countStored();

  const body = Buffer.alloc(MB, 0x61);
  const head = (key: string) =>
    `POST /hooks/${INSTANCE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n${key}Content-Length: ${MB}\r\n\r\n`;
  const flood = await Promise.all(Array.from({ length: CONNECTIONS }, () => send(head(''), body)));
  const during = memoryOf(hub.pid);
  const statuses = new Map<number, number>();
  for (const o of flood) statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1);

  // Memory settles back near idle (bounded wait: the collector runs on its own schedule). Near: the
  // allocator keeps some of what the flood's reads used (1,500 bodies went through the process's
  // read buffers, drained by the refusals' lingering close): 71–111 MB above idle after 10 s on the
  // code before lingering closes and 85–111 MB with them (three runs each, 2026-12-07); a hub
  // holding the bodies would be 1,500 MB above.
  let after = memoryOf(hub.pid);
  for (let waited = 0; after.rssMb > idle.rssMb + RETAINED_MB && waited < 10_000; waited += 250) {
    await new Promise((r) => setTimeout(r, 250));
    after = memoryOf(hub.pid);
  }

  // Slow clients: headers trickled without end, and a body trickled after a valid key.
  const slowHeaders = Array.from({ length: 30 }, () =>
    trickle(`POST /hooks/${INSTANCE} HTTP/1.1\r\nHost: 127.0.0.1\r\n`, 'X-Slow: aaaaaaaa\r\n', 300),
  );
  const slowBodies = Array.from({ length: 30 }, () =>
    trickle(
      `POST /hooks/${INSTANCE} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nx-api-key: ${API_KEY}\r\nContent-Length: 100000\r\n\r\n`,
      '{',
      300,
    ),
  );
  // Bounded: both timeouts are a few seconds; an unbounded trickle would hang the test instead.
  const bounded = <T>(p: Promise<T>) =>
    Promise.race([
      p,
      new Promise<T>((_, reject) => setTimeout(() => reject(new Error('still open after 20 s')), 20_000)),
    ]);
  const headersOutcomes = await bounded(Promise.all(slowHeaders));
  const bodyOutcomes = await bounded(Promise.all(slowBodies));

  console.info('unauthenticated flood', {
    idleRssMb: Math.round(idle.rssMb),
    peakRssMb: Math.round(during.peakMb),
    afterRssMb: Math.round(after.rssMb),
    statuses: Object.fromEntries(statuses),
    slowHeaders: headersOutcomes.map((o) => o.status),
    slowBodies: bodyOutcomes.map((o) => o.status),
  });
  // Every keyless push was refused: 401, or the connection closed on it (past the connections a
  // refusal lingers on, MAX_LINGERING_CONNECTIONS, the hub closes a refused connection while the
  // client is still sending, so the client's kernel may drop the answer), or
  // 408 for a client whose headers waited too long behind the other 1,499. None was accepted.
  expect([...statuses.keys()].filter((s) => ![401, 408, 0].includes(s))).toEqual([]);
  expect(statuses.get(401)).toBeGreaterThan(0);
  expect((await countStored()) - stored).toBe(0);
  expect(during.peakMb).toBeLessThan(400);
  expect(after.rssMb).toBeLessThan(idle.rssMb + RETAINED_MB);
  // The hub closed every slow client itself, answering 408 where it had read a request head.
  expect(headersOutcomes.every((o) => o.status === 408 || o.status === 0)).toBe(true);
  expect(bodyOutcomes.map((o) => o.status)).toEqual(bodyOutcomes.map(() => 408));
  // And it still serves.
  const res = await fetch(`${hub.base}/hooks/${INSTANCE}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
    body: JSON.stringify({ id: 'after', subject: 's' }),
  });
  expect(res.status).toBe(202);
});
