/**
 * Child-process entry for the pipeline floor: a minimal durable push → webhook pipeline, what that
 * work costs on this machine with none of the hub's features. Beside the ingest floor (baseline-server.ts: a
 * durable acknowledgement only), this one delivers too, so the end-to-end rows (events/s, CPU per
 * delivered event) have a same-run baseline that does the same kind of work, which neither the
 * ingest floor (no delivery) nor pg-boss's no-op queue hop (no HTTP either side) does.
 *
 * - Ingest: a bare fastify route stores each push in one INSERT (pg Pool of 10) and answers after
 *   the commit, as the ingest floor does.
 * - Delivery, in the same process, at most as many POSTs in flight as the hub opens connections to
 *   one subscriber (`DELIVERY_SOCKETS_PER_ORIGIN`, 32; the window counts a delivery from its claim
 *   to its answer, not its record, where the hub's `workers.deliveryConcurrency` of 64 counts the
 *   record and the wait for a connection too): a push that
 *   finds room is stored already claimed and POSTed at once (as the hub leases at store); one that
 *   does not waits as pending, and a claim (`UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
 *   LOCKED)`) takes it when a delivery ends. Each POST carries a Standard Webhooks signature
 *   (HMAC-SHA256, keep-alive sockets); the 2xx are recorded by one UPDATE at a time, each taking
 *   every delivery answered since the last (a refused one goes back to pending). Nothing polls.
 * - Left out, all of which the hub does: normalizing the vendor's payload into an event, dedupe,
 *   per-key and per-subject ordering, the event log, fan-out to subscriptions, retries and their
 *   schedule, the attempt history, leases that survive a crash, metrics.
 */
import { createHmac, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DELIVERY_SOCKETS_PER_ORIGIN } from '../../packages/server/src/delivery/http-post.ts';
import { serveChild } from './child.ts';
import { fastify, pg } from './deps.ts';

/** POSTs in flight at most: the connections the hub opens to one subscriber. */
const WINDOW = DELIVERY_SOCKETS_PER_ORIGIN;
const SECRET = Buffer.from('pipeline-floor-secret');

const databaseUrl = process.env.BENCH_DATABASE_URL!;
const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
const agent = new http.Agent({ keepAlive: true, maxSockets: WINDOW });
let target: URL | undefined;
/** Deliveries between their claim (or store) and their POST's answer. */
let inFlight = 0;
let pumping = false;
let again = false;
/** Delivered ids waiting for their record; one record statement at a time takes them all. */
let toRecord: string[] = [];
let recording = false;
let delivered = 0;
let failed = 0;

const app = fastify({ logger: false });
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.post('/hooks/:instance', async (request, reply) => {
  // Stored already claimed when the window has room, and delivered by this process at once (the
  // hub's lease at store): no claim statement for a push that finds the pipeline keeping up.
  const leased = inFlight < WINDOW;
  if (leased) inFlight++;
  const body = request.body as string;
  const { rows } = await pool
    .query<{ id: string }>(
      'insert into bench_pipe (instance, body, status) values ($1, $2, $3) returning id',
      [(request.params as { instance: string }).instance, body, leased ? 1 : 0],
    )
    .catch((error: unknown) => {
      if (leased) inFlight--;
      throw error;
    });
  if (leased) void deliver(rows[0]!.id, body);
  // Stored pending: the window may have emptied while the INSERT ran (every delivery in flight
  // ended and claimed nothing, this row not committed yet), and then no delivery's end is left to
  // claim it. Two full bench runs hung so, waiting for the floor's deliveries.
  else void pump();
  return reply.code(200).send({ status: 'accepted' });
});

/** Claims what the window has room for (pushes stored while it was full) and delivers it. */
async function pump(): Promise<void> {
  if (pumping) {
    again = true;
    return;
  }
  pumping = true;
  try {
    do {
      again = false;
      while (inFlight < WINDOW) {
        const room = WINDOW - inFlight;
        inFlight += room;
        const { rows } = await pool.query<{ id: string; body: string }>(
          `update bench_pipe set status = 1 where id in (
             select id from bench_pipe where status = 0 order by id limit $1 for update skip locked)
           returning id, body::text as body`,
          [room],
        );
        inFlight -= room - rows.length;
        for (const r of rows) void deliver(r.id, r.body);
        if (rows.length < room) break;
      }
    } while (again);
  } finally {
    pumping = false;
  }
}

async function deliver(id: string, body: string): Promise<void> {
  const ok = await post(body);
  if (ok) {
    toRecord.push(id);
    void record();
  } else {
    failed++;
    await pool.query('update bench_pipe set status = 0 where id = $1', [id]);
  }
  inFlight--;
  void pump();
}

/** Records the delivered ids in one statement, those delivered meanwhile in the next. */
async function record(): Promise<void> {
  if (recording || toRecord.length === 0) return;
  recording = true;
  const ids = toRecord;
  toRecord = [];
  try {
    await pool.query('update bench_pipe set status = 2, delivered_at = now() where id = any($1::bigint[])', [
      ids,
    ]);
    delivered += ids.length;
  } finally {
    recording = false;
  }
  void record();
}

/** One signed POST (Standard Webhooks headers); true on a 2xx. */
function post(body: string): Promise<boolean> {
  const id = randomUUID();
  const timestamp = Math.floor(Date.now() / 1000).toString();
  const signature = createHmac('sha256', SECRET).update(`${id}.${timestamp}.${body}`).digest('base64');
  return new Promise((resolve) => {
    const req = http.request(
      target!,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'webhook-id': id,
          'webhook-timestamp': timestamp,
          'webhook-signature': `v1,${signature}`,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300));
      },
    );
    req.on('error', () => resolve(false));
    req.end(body);
  });
}

serveChild(
  {
    async start(options: { subscriber: string }) {
      target = new URL(options.subscriber);
      await pool.query(
        `create table if not exists bench_pipe (id bigserial primary key, instance text not null, body jsonb not null,
           status smallint not null default 0, received_at timestamptz not null default now(), delivered_at timestamptz)`,
      );
      await pool.query('create index if not exists bench_pipe_pending on bench_pipe (id) where status = 0');
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as AddressInfo).port };
    },
    async counts() {
      const { rows } = await pool.query<{ stored: string; recorded: string }>(
        'select count(*) as stored, count(*) filter (where status = 2) as recorded from bench_pipe',
      );
      return { stored: Number(rows[0]!.stored), recorded: Number(rows[0]!.recorded), delivered, failed };
    },
  },
  async () => {
    await app.close();
    agent.destroy();
    await pool.end();
  },
);
