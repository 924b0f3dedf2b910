/**
 * A started hub process ({@link startCommandHub}) with one Cliniko pull instance (`cl`, polled every 200 ms) against the
 * Cliniko simulator, and one webhook subscription (`front-desk`) to a recording subscriber: what the
 * Cliniko command tests (cliniko-commands.int, cliniko-block-commands.int) each set up the same way.
 */
import { ClinikoSimulator, type ClinikoSimulatorOptions } from '@switchyard/connector-cliniko/simulator';
import { fixtureSettings } from '@switchyard/connector-cliniko/testing';
import { type CommandHub, startCommandHub } from './command-hub.test-support.ts';

export { causedBy, eventually } from './command-hub.test-support.ts';

/** The hub, the simulator and the subscriber of {@link startClinikoHub}, with the tests' helpers. */
export interface ClinikoHub extends CommandHub {
  sim: ClinikoSimulator;
}

/** Cliniko shows updated_at by the second: a write in the second of the last version is not newer. */
export async function nextSecond(): Promise<void> {
  await new Promise((r) => setTimeout(r, 1050 - (Date.now() % 1000)));
}

/**
 * Puts appointment `id` at Cliniko (booked 2026-03-10 10:00 to 10:30, nothing flagged, `fields`
 * over that) and waits until the hub has polled it and delivered its `appointment.created`, then
 * for the next second (the next version of it must be newer: {@link nextSecond}). Its subject.
 *
 * @example
 * ```ts
 * const subject = await pollAppointment(c, '7001', { patient_arrived: true });
 * ```
 */
export async function pollAppointment(
  c: Pick<ClinikoHub, 'sim' | 'subscriber'>,
  id: string,
  fields: Record<string, unknown> = {},
): Promise<string> {
  c.sim.put({
    id,
    created_at: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    starts_at: '2026-03-10T10:00:00Z',
    ends_at: '2026-03-10T10:30:00Z',
    patient_arrived: false,
    did_not_arrive: false,
    notes: null,
    cancelled_at: null,
    ...fields,
  });
  const created = await c.subscriber.waitFor(
    (r) => r.type === 'appointment.created' && r.text.includes(`"value":"${id}"`),
  );
  await nextSecond();
  return created.subject!;
}

/**
 * Starts the hub on the test database `dbUrl`, its subscription taking `events`; `simulator` sets
 * the Cliniko simulator's behaviour (say, `presenceWritable: false`: the appointment PATCH ignores
 * the presence flags).
 *
 * @example
 * ```ts
 * const c = await startClinikoHub(db.url(), ['slot.*', 'command.*']);
 * const sent = await c.api('POST', '/v1/commands', { type: 'slot.unblock', subject, data: {} });
 * await c.finished(sent.json.id);
 * await c.stop();
 * ```
 */
export async function startClinikoHub(
  dbUrl: string,
  events: readonly string[],
  simulator: Omit<ClinikoSimulatorOptions, 'apiKey'> = {},
): Promise<ClinikoHub> {
  const sim = new ClinikoSimulator({ ...simulator, apiKey: fixtureSettings.apiKey });
  await sim.start();
  const c = await startCommandHub(dbUrl, {
    file: 'cliniko-hub.yaml',
    instances: [
      '  - id: cl',
      '    connector: cliniko',
      '    mode: pull',
      '    settings:',
      `      apiKey: ${fixtureSettings.apiKey}`,
      `      userAgent: ${fixtureSettings.userAgent}`,
      `      apiBaseUrl: ${sim.url}`,
      '    pull: { interval: 200ms }',
    ],
    subscription: { id: 'front-desk', events },
  }).catch(async (error) => {
    await sim.close();
    throw error;
  });
  return Object.assign(Object.create(c) as CommandHub, {
    sim,
    async stop() {
      await c.stop();
      await sim.close();
    },
  });
}
