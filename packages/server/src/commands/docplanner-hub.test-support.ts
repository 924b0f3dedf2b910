/**
 * A started hub process ({@link startCommandHub}) with one Docplanner push instance (`dp`) against the Docplanner simulator
 * (its write API echoing each change to the hub's hook), and one webhook subscription (`rota`) to a
 * recording subscriber: what the Docplanner command tests (slot-commands.int,
 * block-before-echo.int) each set up the same way.
 */
import { DocplannerSimulator } from '@switchyard/connector-docplanner/simulator';
import { type CommandHub, docplannerInstance, startCommandHub } from './command-hub.test-support.ts';

export type { Data } from './command-hub.test-support.ts';

const PUSH_KEY = 'dp-hub-push-key-9f8e7d6c';

/** The simulated account's place (facility, doctor, address) the tests act at. */
export const PLACE = { facility: '90211', doctor: '182733', address: '221304' };

/** A `slot.block`'s data at {@link PLACE}. */
export const blockData = (start: string, end: string, reason?: string) => ({
  start,
  end,
  practitioner: { id: PLACE.doctor },
  location: { id: PLACE.address },
  organization: { id: PLACE.facility },
  ...(reason === undefined ? {} : { reason }),
});

/** The hub, the simulator and the subscriber of {@link startDocplannerHub}, with the tests' helpers. */
export interface DocplannerHub extends CommandHub {
  sim: DocplannerSimulator;
}

/**
 * Starts the hub on the test database `dbUrl`, its subscription taking `events`.
 *
 * @example
 * ```ts
 * const d = await startDocplannerHub(db.url(), ['slot.*', 'command.*']);
 * const id = await d.send({ type: 'slot.block', instance: 'dp', data: blockData(start, end) });
 * const { data } = await d.outcomeOf(id); // data.result.slotId
 * await d.stop();
 * ```
 */
export async function startDocplannerHub(dbUrl: string, events: readonly string[]): Promise<DocplannerHub> {
  const sim = new DocplannerSimulator({ apiKey: PUSH_KEY, timeScale: 0.0001 });
  await sim.start();
  const c = await startCommandHub(dbUrl, {
    file: 'docplanner-hub.yaml',
    instances: docplannerInstance('dp', sim.url),
    subscription: { id: 'rota', events, sources: ['dp'] },
    env: { T_PUSH: PUSH_KEY },
  }).catch(async (error) => {
    await sim.close();
    throw error;
  });
  sim.writes.hookUrl = `${c.hub.url}/hooks/dp`;
  return Object.assign(Object.create(c) as CommandHub, {
    sim,
    async stop() {
      await c.stop();
      await sim.close();
    },
  });
}
