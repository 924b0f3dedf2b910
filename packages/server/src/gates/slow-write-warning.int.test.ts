/**
 * Under a stalled database every gate decision's write runs past its deadline, and each one was
 * logged as a warning: one line per vendor request, burying the rest of the log. The warning is
 * now given at most once every 30 s per process (the pattern of storage/unavailable.ts), the
 * others at debug, the next warning counting them.
 */
import type { JsonObject } from '@switchyard/core';
import { type RecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import type { Gates } from './gates.ts';
import { API_KEY, addApprover, dpFixture, pushTo, startGatesHub } from './gates-hub.test-support.ts';

const database = useTestDatabase();
const lines: { level: number; msg: string; suppressed?: number }[] = [];
let hub: Hub;
let gates: Gates;
let approver: RecordingSubscriber;

beforeAll(async () => {
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  ({ hub, gates } = await startGatesHub(database.url(), { gates: { approverCacheMs: 0, logger } }));
  await hub.instances.upsert({
    id: 'dp',
    connector: 'docplanner',
    mode: 'push',
    settings: { pushAuth: { apiKey: API_KEY } },
    gate: { deadlineMs: 1000, default: 'approve' },
  });
  approver = await addApprover(hub, 'crm', {
    defaultResponse: { status: 409, body: { reason: 'slot taken' } },
  });
});
afterAll(async () => {
  await gates?.drain();
  await gates?.stop();
  await hub?.stop();
  await approver?.close();
});

/** A distinct slot-booking (its own start and patient): a new gate request. */
function slotBooking(n: number): JsonObject {
  const body = dpFixture('slot-booking');
  const request = (body.data as JsonObject).visit_booking_request as JsonObject;
  request.start_at = `2026-04-01T09:0${n}:00+02:00`;
  request.end_at = `2026-04-01T09:0${n}:30+02:00`;
  (request.patient as JsonObject).phone = `+4860010000${n}`;
  body.created_at = `2026-03-20T10:00:0${n}+01:00`;
  return body;
}

it('warns once of decisions given before they were recorded, the next ones at debug', async () => {
  const locker = new pg.Client({ connectionString: database.url() });
  await locker.connect();
  try {
    await locker.query('begin');
    // Each decision's statement (it writes the answers too) waits past the deadline.
    await locker.query('lock table switchyard.gate_answers in exclusive mode');
    for (const n of [1, 2, 3]) expect((await pushTo(hub, 'dp', slotBooking(n))).status).toBe(409);
    await locker.query('commit');
  } finally {
    await locker.end();
  }
  await gates.drain();
  const slow = lines.filter((l) =>
    l.msg.startsWith('gate decision given to the vendor before it was recorded'),
  );
  // Before: three warnings, one per request.
  expect(slow.map((l) => l.level)).toEqual([40, 20, 20]);
});
