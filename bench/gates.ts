/**
 * Gate overhead: the time the hub adds on top of the approver's own answer time when a vendor's
 * approval request (Docplanner slot-booking) waits for a decision. An approver on loopback answers
 * after a fixed 20 ms; overhead = the vendor's wait (hub.ingest of the gate request, storing
 * included) − 20 ms. Baseline, same run: a direct signed POST to the same approver, minus 20 ms.
 *
 * Runs on its own: `DATABASE_URL=postgres://… node bench/gates.ts [--quick]`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { docplannerConnector } from '../packages/connectors/docplanner/src/index.ts';
import { postWebhook } from '../packages/server/src/delivery/http-post.ts';
import { generateSecret, signPayload } from '../packages/server/src/delivery/sign.ts';
import { createGates } from '../packages/server/src/gates/gates.ts';
import { createHub } from '../packages/server/src/pipeline/hub.ts';
import { createTestDatabase } from '../packages/testing/src/postgres/databases.ts';
import { pino } from './lib/deps.ts';
import { type BenchOptions, type BenchResult, percentile, row } from './lib/result.ts';

const APPROVER_DELAY_MS = 20;
const API_KEY = 'bench-gate-key';

function slotBooking(n: number): Buffer {
  const minute = String(n % 60).padStart(2, '0');
  const hour = String(Math.floor(n / 60) % 24).padStart(2, '0');
  const day = String(1 + (Math.floor(n / 1440) % 28)).padStart(2, '0');
  return Buffer.from(
    JSON.stringify({
      name: 'slot-booking',
      data: {
        facility: { id: '1', name: 'Bench clinic' },
        doctor: { id: '2', name: 'Anna', surname: 'Nowak' },
        address: { id: '3', name: 'Room 1' },
        visit_booking_request: {
          booking_at: '2026-03-02T09:14:05+01:00',
          booking_by: 'user',
          duration: 20,
          start_at: `2026-05-${day}T${hour}:${minute}:00+02:00`,
          end_at: `2026-05-${day}T${hour}:${minute}:20+02:00`,
          patient: { name: 'Jan', surname: 'Kowalski', phone: `+48600${100000 + n}` },
        },
      },
      created_at: '2026-03-02T09:14:05+01:00',
    }),
  );
}

/** `node:http` approver answering 200 `{"decision":"approve"}` after a fixed delay. */
async function startApprover(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () =>
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"decision":"approve"}');
      }, APPROVER_DELAY_MS),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/approve`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export async function run(options: Partial<BenchOptions> = {}): Promise<BenchResult> {
  const quick = options.quick ?? false;
  const log = options.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const samples = quick ? 100 : 500;
  const warmup = quick ? 20 : 100;
  const database = await createTestDatabase({
    ...(options.adminUrl ? { adminUrl: options.adminUrl } : {}),
    prefix: 'sy_bench_gates_',
  });
  const approver = await startApprover();
  const gates = createGates();
  // The responder's own time (normalize, record, ask, decide), apart from ingest storing the push.
  const responderMs: number[] = [];
  const responder = gates.hooks.gateResponder;
  const hooks = {
    ...gates.hooks,
    gateResponder: async (g: Parameters<typeof responder>[0]) => {
      const started = performance.now();
      try {
        return await responder(g);
      } finally {
        responderMs.push(performance.now() - started - APPROVER_DELAY_MS);
      }
    },
  };
  const hub = await createHub({
    databaseUrl: database.url,
    connectors: [docplannerConnector],
    secretKey: 'bench-secret-key-0123456789abcdef',
    logger: pino({ level: 'silent' }),
    options: { retention: { cron: false } },
    ...hooks,
  });
  try {
    await hub.start();
    await gates.start(hub.host);
    await hub.instances.upsert({
      id: 'dp-bench',
      connector: 'docplanner',
      mode: 'push',
      settings: { pushAuth: { apiKey: API_KEY } },
      gate: { deadlineMs: 2000, default: 'refuse' },
    });
    const secret = generateSecret();
    await hub.subscriptions.create({
      id: 'approver',
      url: approver.url,
      eventTypes: ['schedule.updated'],
      approver: true,
      secrets: [secret],
      allowPrivateAddresses: true,
    });

    const direct = async (): Promise<number> => {
      const body = slotBooking(0).toString();
      const started = performance.now();
      const r = await postWebhook({
        url: approver.url,
        headers: {
          ...signPayload({ id: 'bench', timestamp: new Date(), body, secrets: [secret] }),
          'content-type': 'application/json',
        },
        body,
        timeoutMs: 5000,
        allowLoopback: true,
        allowPrivate: true,
      });
      if (!r.ok) throw new Error(`direct call failed: ${r.error ?? r.status}`);
      return performance.now() - started - APPROVER_DELAY_MS;
    };
    let seq = 0;
    const gate = async (): Promise<number> => {
      const started = performance.now();
      const r = await hub.ingest('dp-bench', {
        route: 'default',
        params: {},
        query: {},
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
        rawBody: slotBooking(seq++),
        sourceIp: '127.0.0.1',
        receivedAt: new Date(),
      });
      const elapsed = performance.now() - started;
      if (r.status !== 200) throw new Error(`gate answered ${r.status}`);
      return elapsed - APPROVER_DELAY_MS;
    };

    log(`gates: warming up (${warmup} requests)`);
    for (let i = 0; i < warmup; i++) {
      await direct();
      await gate();
    }
    log(`gates: ${samples} sequential gate requests, interleaved with direct calls`);
    const directMs: number[] = [];
    const gateMs: number[] = [];
    responderMs.length = 0;
    for (let i = 0; i < samples; i++) {
      directMs.push(await direct());
      gateMs.push(await gate());
    }
    const decideMs = [...responderMs];
    const concurrent = 10;
    // Warmed at the concurrency it measures, as the sequential run is: the first rounds of ten at
    // once open the connections the sequential run never needed, a Postgres backend start-up and a
    // cold catalog cache each (bench/analysis.md, "Gates ten at once: the first burst"). That
    // round is reported on its own row.
    log(`gates: warming up ${concurrent} at a time (${warmup} requests)`);
    const firstBurstMs = await Promise.all(Array.from({ length: concurrent }, () => gate()));
    for (let i = concurrent; i < warmup; i += concurrent) {
      await Promise.all(Array.from({ length: concurrent }, () => gate()));
    }
    log(`gates: ${samples} gate requests, ${concurrent} at a time`);
    const gateConcurrentMs: number[] = [];
    for (let i = 0; i < samples; i += concurrent) {
      gateConcurrentMs.push(...(await Promise.all(Array.from({ length: concurrent }, () => gate()))));
    }
    const base = {
      unit: 'ms',
      baselineLabel: 'direct signed POST to the approver',
      higherIsBetter: false,
    } as const;
    const target = { kind: 'max', value: 50, label: '< 50 ms' } as const;
    return {
      name: 'Gate overhead',
      rows: [
        row('Gate overhead p50 (one at a time)', percentile(gateMs, 0.5), percentile(directMs, 0.5), base),
        row('Gate overhead p99 (one at a time)', percentile(gateMs, 0.99), percentile(directMs, 0.99), {
          ...base,
          target,
        }),
        row(
          'Gate machinery alone p50 (one at a time)',
          percentile(decideMs, 0.5),
          percentile(directMs, 0.5),
          base,
        ),
        row(
          'Gate machinery alone p99 (one at a time)',
          percentile(decideMs, 0.99),
          percentile(directMs, 0.99),
          base,
        ),
        row(
          `Gate overhead p50 (${concurrent} concurrent)`,
          percentile(gateConcurrentMs, 0.5),
          percentile(directMs, 0.5),
          base,
        ),
        row(
          `Gate overhead p99 (${concurrent} concurrent)`,
          percentile(gateConcurrentMs, 0.99),
          percentile(directMs, 0.99),
          {
            ...base,
            target,
          },
        ),
        row(
          `Gate overhead, first ${concurrent} at once after the sequential run (slowest of the ${concurrent})`,
          Math.max(...firstBurstMs),
          percentile(directMs, 0.99),
          base,
        ),
      ],
      notes: [
        `Approver on loopback answering after ${APPROVER_DELAY_MS} ms; overhead = the vendor's wait − ${APPROVER_DELAY_MS} ms, storing the notification included.`,
        `${samples} samples each; hub, gates and approver in one process (the decision is made locally, no job).`,
        '"Gate machinery alone" is the gate responder (normalize, record, ask approvers, record the decision) without ingest storing the push.',
        `The ${concurrent}-at-once rows follow ${warmup} warm-up requests at that concurrency; the first of those rounds (its own row) opens the pool connections the sequential run did not use, each a Postgres backend start-up and a cold catalog cache: what the first burst after a start pays.`,
      ],
    };
  } finally {
    await gates.stop();
    await hub.stop();
    await approver.close();
    await database.drop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await run({ quick: process.argv.includes('--quick') });
  for (const r of result.rows) {
    console.log(
      `${r.metric.padEnd(40)} ${r.value.toFixed(2).padStart(8)} ms   baseline ${r.baseline?.toFixed(2) ?? '-'} ms   ratio ${r.ratio?.toFixed(2) ?? '-'}`,
    );
  }
  for (const note of result.notes ?? []) console.log(`  ${note}`);
}
