/**
 * A vendor's approval request while Postgres is out of disk space (a real 53100, raised by Postgres
 * through `injectSqlstate`): on the request's durable write, the vendor must have the instance's
 * configured default, as when the database is unreachable; on the decision's record, the vendor
 * must have the approver's decision, recorded once the fault clears. Either is said once, naming
 * the condition, never an error or a stack per request.
 */
import { docplannerConnector } from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import { inboundRequest, type RecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createHub, type Hub } from '../pipeline/hub.ts';
import { injectSqlstate, SQLSTATE_FAULTS } from '../storage/sqlstate-fault.test-support.ts';
import { createGates, type Gates } from './gates.ts';
import { addApprover, dpFixture } from './gates-hub.test-support.ts';

const database = useTestDatabase();
const API_KEY = 'dp-push-key';
const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
let hub: Hub;
let gates: Gates;
let admin: pg.Pool;
const subscribers: RecordingSubscriber[] = [];

/** A started hub with the gates; `worker: false` hands every request to a gate job (pg-boss). */
async function startHub(worker: boolean): Promise<{ hub: Hub; gates: Gates }> {
  const g = createGates({ worker, approverCacheMs: 0 });
  const h = await createHub({
    databaseUrl: database.url(),
    connectors: [docplannerConnector],
    secretKey: 'gates-full-disk-secret-key-012345',
    logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
    options: { pollIntervalMs: 200, instanceCacheMs: 0, retention: { cron: false }, workers: false },
    ...g.hooks,
  });
  await h.start();
  await g.start(h.host);
  return { hub: h, gates: g };
}

beforeAll(async () => {
  ({ hub, gates } = await startHub(true));
  admin = new pg.Pool({ connectionString: database.url(), max: 1 });
});

afterAll(async () => {
  await gates?.stop().catch(() => {});
  await hub?.stop({ graceful: false }).catch(() => {});
  await admin?.end();
  await Promise.all(subscribers.map((s) => s.close()));
});

async function instance(id: string, defaultDecision: 'approve' | 'refuse'): Promise<void> {
  await hub.instances.upsert({
    id,
    connector: 'docplanner',
    mode: 'push',
    settings: { pushAuth: { apiKey: API_KEY } },
    gate: { deadlineMs: 1500, default: defaultDecision },
  });
}

const push = (instanceId: string, body: JsonObject, via = hub) =>
  via.ingest(instanceId, inboundRequest({ headers: { 'x-api-key': API_KEY }, body }));

it("answers a gate request with the instance's default while Postgres is out of disk space", {
  timeout: 60_000,
}, async () => {
  await instance('dp', 'refuse');
  const from = lines.length;
  const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
    table: 'gate_requests',
    on: ['insert'],
  });
  try {
    // Docplanner's refusal (the default here), as when the database is unreachable.
    expect(await push('dp', dpFixture('slot-booking'))).toMatchObject({ ok: true, status: 409 });
  } finally {
    await full.clear();
  }
  // Before: "gate request failed; answering the default", an error with a stack per request.
  expect(lines.slice(from).filter((l) => l.level >= 50)).toEqual([]);
  expect(lines.slice(from).some((l) => /Postgres is out of disk space/.test(l.msg))).toBe(true);
  // Stored again once the disk has room: the request is recorded.
  expect(await push('dp', dpFixture('slot-booking'))).toMatchObject({ ok: true });
  const { rows } = await admin.query(
    `select count(*)::int as n from switchyard.gate_requests where instance_id = 'dp'`,
  );
  expect(rows[0].n).toBeGreaterThanOrEqual(1);
});

it("gives the vendor the approver's decision when Postgres cannot record it, and records it once it can", {
  timeout: 60_000,
}, async () => {
  // The default approves: a vendor answered the default would be told yes.
  await instance('dp-record', 'approve');
  subscribers.push(
    await addApprover(hub, 'crm-record', {
      defaultResponse: { status: 422, body: { reason: 'slot taken' } },
    }),
  );
  const from = lines.length;
  // The request's insert goes through; its decision's record (the update that decides it) fails.
  const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
    table: 'gate_requests',
    on: ['update'],
    when: `new.instance_id = 'dp-record' and new.decision is not null`,
  });
  let answers: number[];
  try {
    const first = await push('dp-record', dpFixture('slot-booking'));
    // The vendor's retry of the same request while the record still fails: the same decision.
    const retry = await push('dp-record', dpFixture('slot-booking'));
    answers = [first, retry].map((r) => (r.ok ? r.status : 0));
  } finally {
    await full.clear();
  }
  // Docplanner's refusal (409): the approver's decision, not the default (approve).
  expect(answers).toEqual([409, 409]);
  const during = lines.slice(from);
  expect(during.filter((l) => l.level >= 50)).toEqual([]);
  // Before: "gate decision not recorded yet: the database is unreachable" with the error's stack,
  // one per decision, whatever the condition.
  expect(during.filter((l) => JSON.stringify(l).includes('"stack"'))).toEqual([]);
  // Once, at warning level unless the same condition was warned of within 30 s (the case above).
  expect(
    during.filter((l) =>
      /^the database is unavailable \(Postgres is out of disk space\): gate decisions are given to the vendor and recorded once it is back/.test(
        l.msg,
      ),
    ),
    JSON.stringify(during),
  ).toHaveLength(1);
  // Recorded once the disk has room, as the vendor was answered.
  const recorded = await (async () => {
    for (const until = Date.now() + 15_000; Date.now() < until; ) {
      const { rows } = await admin.query(
        `select decision, decision_reason, decided_by from switchyard.gate_requests where instance_id = 'dp-record'`,
      );
      if (rows.length > 0 && rows.every((r) => r.decision !== null)) return rows;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the decision was not recorded');
  })();
  expect(recorded).toEqual([{ decision: 'refuse', decision_reason: 'refused', decided_by: 'crm-record' }]);
  console.info('disk full at the gate decision record', { answers, recorded: recorded.length });
});

/**
 * A slot booking pushed to instance `id` of `hub` while pg-boss's job table refuses `on` (a full
 * disk), the fault cleared after: the vendor's answer and the log lines written meanwhile, checked
 * to hold no error line and no stack (the condition is reported once, as every caller's is).
 */
async function pushWhileJobsRefuse(hub: Parameters<typeof push>[2], id: string, on: 'insert' | 'update') {
  const from = lines.length;
  const full = await injectSqlstate(admin, SQLSTATE_FAULTS.diskFull, {
    schema: 'switchyard_queue',
    table: 'job',
    on: [on],
  });
  let answer: Awaited<ReturnType<typeof push>>;
  try {
    answer = await push(id, dpFixture('slot-booking'), hub);
    expect(await full.raised()).toBeGreaterThanOrEqual(1);
  } finally {
    await full.clear();
  }
  const during = lines.slice(from);
  expect(during.filter((l) => l.level >= 50)).toEqual([]);
  expect(during.filter((l) => JSON.stringify(l).includes('"stack"'))).toEqual([]);
  return { answer, during };
}

/**
 * The gate request rows of instance `id` once one holds a decision (or as they are after 10 s): a
 * request answered the default at its deadline is recorded just after the vendor has the answer,
 * as gates.ts's responder does not let the write delay it.
 */
async function decidedRows(id: string) {
  const rows = async () =>
    (
      await admin.query(
        `select status, decision, decision_reason from switchyard.gate_requests where instance_id = $1`,
        [id],
      )
    ).rows;
  for (const until = Date.now() + 10_000; Date.now() < until; ) {
    const found = await rows();
    if (found.length === 1 && found[0].decision !== null) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  return rows();
}

it("a gate job pg-boss cannot store (a full disk at the hand-off): the vendor has the default, and the request's row says so", {
  timeout: 60_000,
}, async () => {
  // A process that decides nothing itself: each request is stored, then handed to a gate job.
  const http = await startHub(false);
  try {
    await instance('dp-handoff', 'refuse');
    const { answer } = await pushWhileJobsRefuse(http.hub, 'dp-handoff', 'insert');
    // Docplanner's refusal (the default), at once rather than at the deadline.
    expect(answer).toMatchObject({ ok: true, status: 409 });
    // What the vendor was given, recorded at once (before: 'pending' with no decision until the
    // sweep closed it, past its deadline, as abandoned by a stopped process).
    const recorded = await decidedRows('dp-handoff');
    expect(recorded).toEqual([{ status: 'decided', decision: 'refuse', decision_reason: 'error' }]);
    console.info('disk full at the gate hand-off', { answer: answer.ok ? answer.status : 0, recorded });
  } finally {
    await http.gates.stop().catch(() => {});
    await http.hub.stop({ graceful: false }).catch(() => {});
  }
});

it('a gate job pg-boss cannot hand to a worker (a full disk at its job updates): the vendor has the default at the deadline, the row says so, and gate jobs run again once it clears', {
  timeout: 60_000,
}, async () => {
  const http = await startHub(false);
  try {
    await instance('dp-fetch', 'refuse');
    // pg-boss's fetch (`update … set state = 'active'`) and completion are updates of its job table.
    const { answer, during } = await pushWhileJobsRefuse(http.hub, 'dp-fetch', 'update');
    // Docplanner's refusal (the default) at the deadline: no worker could take the job.
    expect(answer).toMatchObject({ ok: true, status: 409 });
    // The default is recorded just after the vendor has it (recording must not delay the answer).
    const recorded = await decidedRows('dp-fetch');
    // Once the disk has room, the worker takes gate jobs again: an approver decides the next one.
    await instance('dp-fetch-after', 'approve');
    subscribers.push(
      await addApprover(hub, 'crm-fetch', {
        defaultResponse: { status: 422, body: { reason: 'slot taken' } },
      }),
    );
    const after = await push('dp-fetch-after', dpFixture('slot-booking'), http.hub);
    expect(recorded).toEqual([{ status: 'decided', decision: 'refuse', decision_reason: 'deadline' }]);
    // The approver's refusal (the default approves): decided by the worker, not the deadline.
    expect(after).toMatchObject({ ok: true, status: 409 });
    expect(await decidedRows('dp-fetch-after')).toEqual([
      { status: 'decided', decision: 'refuse', decision_reason: 'refused' },
    ]);
    // One warning naming the condition (pg-boss's 'error' event, host: pipeline/hub.ts).
    expect(during.filter((l) => /Postgres is out of disk space/.test(l.msg)).length).toBeGreaterThanOrEqual(
      1,
    );
    console.info("disk full at pg-boss's job updates (gates)", {
      answer: answer.ok ? answer.status : 0,
      recorded,
    });
  } finally {
    await http.gates.stop().catch(() => {});
    await http.hub.stop({ graceful: false }).catch(() => {});
  }
});
