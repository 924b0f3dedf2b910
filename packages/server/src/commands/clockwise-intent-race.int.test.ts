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
import type { CommandContext, CommandRequest, JsonObject } from '@switchyard/core';
import {
  capturingLogger,
  fetchVendorHttp,
  MemoryStateStore,
  memoryNormalizeContext,
  useTestDatabase,
} from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

const config = {
  auth: { mode: 'either', key: 'k'.repeat(24) },
  apiBaseUrl: '',
  apiKey: 'cw-api-key',
};
const state = () => stateStore(hub.host.db, 'cw');
const ctx = (): CommandContext<never> =>
  ({
    instanceId: 'cw',
    config: { ...config, apiBaseUrl: sim.apiBaseUrl },
    http: fetchVendorHttp,
    vendorIds: [],
    state: state(),
    commandState: new MemoryStateStore(),
    logger: capturingLogger(),
    attempt: 1,
  }) as unknown as CommandContext<never>;
const START = '2026-03-10T10:30:00-05:00';
const book = (id: string, given: string, family: string) =>
  ({
    id,
    type: 'appointment.book',
    data: { start: START, patient: { given, family }, location: { id: '77' } },
  }) as unknown as CommandRequest<'appointment.book'>;
/** The `create` webhook of appointment `id`, normalized with the instance's state. */
const createWebhook = (id: string) =>
  normalize(
    {
      type: 'create',
      dedupeKey: `create-${id}`,
      orderingKey: `appointment:${id}`,
      payload: { appointment_id: Number(id), event_type: 'create' },
    },
    memoryNormalizeContext({
      instanceId: 'cw',
      config: { ...config, apiBaseUrl: sim.apiBaseUrl },
      state: state() as unknown as MemoryStateStore,
      vendorApi: (req) => fetchVendorHttp.request(req),
    }) as never,
  );

it('two bookings of the same slot at once, both answers lost: each finds its own appointment through its create webhook', async () => {
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
  for (const id of made) await createWebhook(id);
  const again = await Promise.all([
    commands['appointment.book']!(a, { ...ca, attempt: 2 }),
    commands['appointment.book']!(b, { ...cb, attempt: 2 }),
  ]);
  // Before (one entry per slot): one command's part was lost to the other's write, and its retry
  // found nothing and ended permanent, though Clockwise.MD booked it.
  expect(again.map((r) => r.outcome)).toEqual(['done', 'done']);
  expect(new Set(again.flatMap((r) => ('vendorIds' in r ? (r.vendorIds ?? []) : [])))).toEqual(new Set(made));
});

/**
 * A booking whose create went out under the previous version, which kept its entry under the
 * slot-only key (`create-asked:<hospital>:<start instant>`, slotOnlyIntentKey), and whose next try (or
 * `create` webhook) runs under this version after an upgrade. The entry in the old shape is made
 * here from this version's own: its create goes out with the answer lost, then its entry is moved
 * to the old key, as the previous version would have written it.
 */
describe('a lost create asked by the previous version (its entry under the slot-only key) is still found', () => {
  // Written out, not computed: the old shape is the previous version's, whatever this one's code says.
  const newKey = (given: string, family: string) =>
    `create-asked:77:2026-03-10T15:30:00.000Z:${given.toLowerCase()}:${family.toLowerCase()}`;
  const oldKey = 'create-asked:77:2026-03-10T15:30:00.000Z';

  /** Books with the answer lost, then moves the entry to the old key; the appointment's id. */
  async function askedByPreviousVersion(
    command: CommandRequest<'appointment.book'>,
    c: CommandContext<never>,
  ) {
    const before = sim.writes.log.length;
    sim.writes.loseAnswers(1, 503);
    expect((await commands['appointment.book']!(command, c)).outcome).toBe('transient');
    const [created] = sim.writes.log.slice(before).filter((w) => w.path === '/v1/appointments/create');
    const { given, family } = command.data.patient as { given: string; family: string };
    const entry = await state().get<JsonObject>(newKey(given, family));
    expect(entry?.[command.id]).toBeDefined();
    await state().delete(newKey(given, family));
    await state().set(oldKey, entry!);
    return created!.id!;
  }

  it('its create webhook normalized by the previous version (found under the old key): the retry is done with it', async () => {
    const command = book('upgrade-found', 'Ana', 'Reyes');
    const c = ctx();
    const id = await askedByPreviousVersion(command, c);
    // The previous version's normalization named the appointment in its entry.
    const entry = (await state().get<JsonObject>(oldKey))!;
    await state().set(oldKey, {
      ...entry,
      [command.id]: { ...(entry[command.id] as JsonObject), found: id },
    });
    const again = await commands['appointment.book']!(command, { ...c, attempt: 2 });
    // Before: looked for under the new key only, nothing there: permanent, 'outcome unknown'.
    expect(again).toMatchObject({ outcome: 'done', vendorIds: [id] });
    expect(await state().get(oldKey)).toBeUndefined();
  });

  it('its create webhook normalized by this version: found under the old key, and the retry is done with it', async () => {
    const command = book('upgrade-webhook', 'Lena', 'Park');
    const c = ctx();
    const id = await askedByPreviousVersion(command, c);
    await createWebhook(id);
    // Before: the webhook looked under the new keys only and named nothing.
    expect(((await state().get<JsonObject>(oldKey))?.[command.id] as JsonObject | undefined)?.found).toBe(id);
    const again = await commands['appointment.book']!(command, { ...c, attempt: 2 });
    expect(again).toMatchObject({ outcome: 'done', vendorIds: [id] });
  });
});
