/**
 * The aliases an approval request makes up are stored by the gate request's own insert
 * (`HubHost.deferredAliases`), not by a write each before it: two fewer writes and round trips in
 * the vendor's wait for a Docplanner `slot-booking`. A hub of its own database with no pipeline
 * workers, so that no normalize worker stores the same notification's aliases first (that race is
 * the refusal below, made on purpose).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { docplannerConnector } from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import {
  inboundRequest,
  type RecordingSubscriber,
  startRecordingSubscriber,
  useTestDatabase,
} from '@switchyard/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import { createHub, type Hub } from '../pipeline/hub.ts';
import { createGates, type Gates } from './gates.ts';

const database = useTestDatabase();
const API_KEY = 'dp-push-key';
const CONFIG = { pushAuth: { apiKey: API_KEY } };
// Docplanner's own slot-booking example (packages/connectors/docplanner/fixtures, cited there).
const fixture = JSON.parse(
  readFileSync(new URL('../../../connectors/docplanner/fixtures/slot-booking.json', import.meta.url), 'utf8'),
) as JsonObject;

let counter = 0;
const processes: { hub: Hub; gates: Gates }[] = [];
let approver: RecordingSubscriber;

async function startProcess(): Promise<{ hub: Hub; gates: Gates }> {
  const gates = createGates({ approverCacheMs: 0 });
  const hub = await createHub({
    databaseUrl: database.url(),
    connectors: [docplannerConnector],
    secretKey: 'deferred-aliases-secret-key-01234567',
    logger: pino({ level: 'silent' }),
    options: { instanceCacheMs: 0, retention: { cron: false }, workers: false },
    ...gates.hooks,
  });
  await hub.start();
  await gates.start(hub.host);
  processes.push({ hub, gates });
  return { hub, gates };
}

beforeAll(async () => {
  const { hub } = await startProcess();
  await hub.instances.upsert({
    id: 'dp',
    connector: 'docplanner',
    mode: 'push',
    settings: CONFIG,
    gate: { deadlineMs: 5000, default: 'refuse' },
  });
  const secret = generateSecret();
  approver = await startRecordingSubscriber({
    secrets: secret,
    defaultResponse: { status: 200, body: { decision: 'approve' } },
  });
  await hub.subscriptions.create({
    id: 'crm',
    url: approver.url,
    eventTypes: ['schedule.updated'],
    approver: true,
    secrets: [secret],
    allowPrivateAddresses: true,
  });
});

afterAll(async () => {
  for (const p of processes.reverse()) {
    await p.gates.stop();
    await p.hub.stop();
  }
  await approver?.close();
});

/** A slot-booking of its own start time and patient: a new gate request. */
function slotBooking(): JsonObject {
  const n = ++counter;
  const body = structuredClone(fixture);
  const request = (body.data as JsonObject).visit_booking_request as JsonObject;
  request.start_at = `2026-04-02T1${n}:00:00+02:00`;
  request.end_at = `2026-04-02T1${n}:30:00+02:00`;
  (request.patient as JsonObject).phone = `+48600${String(200000 + n)}`;
  return body;
}

const request = (body: JsonObject) => inboundRequest({ headers: { 'x-api-key': API_KEY }, body });

async function push(hub: Hub, body: JsonObject) {
  const r = await hub.ingest('dp', request(body));
  if (!r.ok) throw new Error(`ingest failed: ${JSON.stringify(r.problem)}`);
  return r;
}

/** The aliases stored for instance `dp` in the transaction that stored gate request `id`. */
async function aliasesStoredWith(hub: Hub, id: string) {
  const r = await sql<{ entity: string; vendor_id: string; hub_id: string }>`
    select a.entity, a.vendor_id, a.hub_id from switchyard.aliases a, switchyard.gate_requests g
    where g.id = ${id} and a.instance_id = 'dp' and a.xmin::text = g.xmin::text
    order by a.entity`.execute(hub.host.db);
  return r.rows;
}

describe("the approval request's aliases", () => {
  it('are stored by the gate request’s insert, in its transaction', async () => {
    const { hub } = processes[0]!;
    const body = slotBooking();
    // The approver answers late, so the request's row is read as its insert left it (the
    // decision's update gives the row a new xmin).
    const before = approver.requests.length;
    approver.setDefaultResponse({ status: 200, body: { decision: 'approve' }, delayMs: 1500 });
    const pushed = push(hub, body);
    try {
      while (approver.requests.length === before) await new Promise((r) => setTimeout(r, 10));
      const data = (approver.requests.at(-1)!.json as JsonObject).data as JsonObject;
      const [n] = docplannerConnector.push!.parse(request(body), CONFIG);
      // The approval request's id and its provisional appointment's, each an alias of this request.
      expect(await aliasesStoredWith(hub, data.id as string)).toEqual([
        {
          entity: 'appointment',
          vendor_id: expect.stringMatching(/^gate:/),
          hub_id: (data.proposed as JsonObject).id,
        },
        { entity: 'approval_request', vendor_id: n!.dedupeKey, hub_id: data.id },
      ]);
      expect((await pushed).status).toBe(200);
      const gate = await processes[0]!.gates.get(data.id as string);
      expect(gate).toMatchObject({ decision: 'approve', reason: 'approved', approvers: 1 });
    } finally {
      await pushed.catch(() => {});
      approver.setDefaultResponse({ status: 200, body: { decision: 'approve' } });
    }
  });

  it('one that another process stored first is refused: the request is normalized again and takes it', async () => {
    const { hub } = processes[0]!;
    const body = slotBooking();
    const [n] = docplannerConnector.push!.parse(request(body), CONFIG);
    // Another process gave the approval request's vendor id a hub id; this process never saw it.
    const taken = randomUUID();
    await sql`insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
      values ('dp', 'approval_request', ${n!.dedupeKey}, ${taken})`.execute(hub.host.db);
    const before = approver.requests.length;
    const r = await push(hub, body);
    expect(r.status).toBe(200);
    expect(approver.requests).toHaveLength(before + 1);
    const data = (approver.requests.at(-1)!.json as JsonObject).data as JsonObject;
    expect(data.id).toBe(taken);
    const gate = await processes[0]!.gates.get(taken);
    expect(gate).toMatchObject({ decision: 'approve', reason: 'approved' });
    // The provisional appointment's alias is the second try's, the one approvers were sent.
    const provisional = await sql<{ hub_id: string }>`
      select a.hub_id from switchyard.gate_requests g
      join switchyard.aliases a on a.instance_id = g.instance_id and a.entity = 'appointment'
        and a.vendor_id = 'gate:' || g.match_key
      where g.id = ${taken}`.execute(hub.host.db);
    expect(provisional.rows).toEqual([{ hub_id: (data.proposed as JsonObject).id }]);
  });

  it('a vendor retry reaching another process gets the recorded answer, approvers asked once', async () => {
    const body = slotBooking();
    const before = approver.requests.length;
    const first = await push(processes[0]!.hub, body);
    // The other process knows none of the first one's aliases: its insert is refused, then finds
    // the request recorded.
    const other = await startProcess();
    const again = await push(other.hub, body);
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(approver.requests).toHaveLength(before + 1);
    const rows = await sql<{ n: number }>`
      select count(*)::int as n from switchyard.gate_requests where instance_id = 'dp'`.execute(
      other.hub.host.db,
    );
    expect(rows.rows[0]!.n).toBe(3);
  });
});
