/**
 * Fault test of Clockwise.MD's lost-create lookup (connectors/clockwisemd: the `create-asked:<slot>`
 * state entry, written by the `appointment.book` command before its create and by the `create`
 * webhook's normalization naming the appointment): two bookings of the same slot at once, both
 * answers lost (a proxy's 503 after Clockwise.MD created them), the instance state in real Postgres,
 * the vendor a simulator on loopback.
 *
 * The entry is one JSON value, read, changed and written whole by each writer (StateStore has
 * get/set/delete only). Keyed by the slot alone, two commands writing it at once lost one another's
 * part, and the booking whose part was lost ended `permanent` ("not sent again") although its
 * appointment existed; the key now holds the patient's names too (createIntentKey), so two bookings
 * of one slot for two patients write two entries.
 */
import { clockwisemdConnector } from '@switchyard/connector-clockwisemd';
import { ClockwiseSimulator } from '@switchyard/connector-clockwisemd/simulator';
import type { CommandContext, CommandRequest } from '@switchyard/core';
import {
  capturingLogger,
  fetchVendorHttp,
  MemoryStateStore,
  memoryNormalizeContext,
  useTestDatabase,
} from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeHub } from '../pipeline/fixtures.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { stateStore } from '../pipeline/stores.ts';

const database = useTestDatabase();
const commands = clockwisemdConnector.commands!;
const normalize = clockwisemdConnector.normalize;
let hub: Hub;
let sim: ClockwiseSimulator;

beforeAll(async () => {
  hub = await makeHub(database.url());
  await hub.start();
  sim = new ClockwiseSimulator({ apiKey: 'cw-api-key' });
  await sim.start();
  sim.writes.echoes = false;
});
afterAll(async () => {
  await sim?.close();
  await hub?.stop();
});

it('two bookings of the same slot at once, both answers lost: each finds its own appointment through its create webhook', async () => {
  const config = {
    auth: { mode: 'either', key: 'k'.repeat(24) },
    apiBaseUrl: sim.apiBaseUrl,
    apiKey: 'cw-api-key',
  };
  const state = stateStore(hub.host.db, 'cw');
  const ctx = (): CommandContext<never> =>
    ({
      instanceId: 'cw',
      config,
      http: fetchVendorHttp,
      vendorIds: [],
      state,
      commandState: new MemoryStateStore(),
      logger: capturingLogger(),
      attempt: 1,
    }) as unknown as CommandContext<never>;
  const book = (id: string, given: string, family: string) =>
    ({
      id,
      type: 'appointment.book',
      data: { start: '2026-03-10T10:30:00-05:00', patient: { given, family }, location: { id: '77' } },
    }) as unknown as CommandRequest<'appointment.book'>;
  const a = book('race-a', 'Maria', 'Lopez');
  const b = book('race-b', 'Jon', 'Smith');
  const ca = ctx();
  const cb = ctx();
  sim.writes.loseAnswers(2, 503);
  const first = await Promise.all([
    commands['appointment.book']!(a, ca),
    commands['appointment.book']!(b, cb),
  ]);
  expect(first.map((r) => r.outcome)).toEqual(['transient', 'transient']);
  const made = sim.writes.log.filter((w) => w.path === '/v1/appointments/create').map((w) => w.id!);
  expect(made).toHaveLength(2);
  // Both create webhooks, normalized with the instance's state.
  for (const id of made)
    await normalize(
      {
        type: 'create',
        dedupeKey: `create-${id}`,
        orderingKey: `appointment:${id}`,
        payload: { appointment_id: Number(id), event_type: 'create' },
      },
      memoryNormalizeContext({
        instanceId: 'cw',
        config,
        state: state as MemoryStateStore,
        vendorApi: (req) => fetchVendorHttp.request(req),
      }) as never,
    );
  const again = await Promise.all([
    commands['appointment.book']!(a, { ...ca, attempt: 2 }),
    commands['appointment.book']!(b, { ...cb, attempt: 2 }),
  ]);
  // Before (one entry per slot): one command's part was lost to the other's write, and its retry
  // found nothing and ended permanent, though Clockwise.MD booked it.
  expect(again.map((r) => r.outcome)).toEqual(['done', 'done']);
  expect(new Set(again.flatMap((r) => ('vendorIds' in r ? (r.vendorIds ?? []) : [])))).toEqual(new Set(made));
});
