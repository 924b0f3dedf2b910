/**
 * A connector that cannot parse what a vendor now sends (a bug on a new payload) refuses every push
 * with 400 and a warning carrying the error's stack. That warning was said for every request,
 * without bound; now at most once a minute per instance (logging/repeats.ts), the rest at debug.
 */
import { useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { behaviour, makeHub, push, resetBehaviour, setupInstance } from './fixtures.test-support.ts';
import type { Hub } from './hub.ts';

const database = useTestDatabase();
let hub: Hub;
const log: { level: number; msg: string; instance?: string; suppressed?: number }[] = [];

beforeAll(async () => {
  hub = await makeHub(database.url(), {
    logger: pino({ level: 'debug' }, { write: (line: string) => log.push(JSON.parse(line)) }),
  });
  await hub.start();
  await setupInstance(hub);
});
afterAll(async () => {
  await hub?.stop();
  resetBehaviour();
});

it('pushes a connector cannot parse are each refused, and warned about once per instance', async () => {
  behaviour.parseBug = true;
  const pushes = 5;
  for (let i = 0; i < pushes; i++) {
    const r = await hub.ingest('acme-1', push({ id: `bug-${i}`, type: 'created' }));
    expect(r).toMatchObject({ ok: false, status: 400 });
  }
  const said = log.filter((l) =>
    l.msg.startsWith('inbound request refused: the connector could not parse it'),
  );
  expect(said).toHaveLength(pushes);
  const warnings = said.filter((l) => l.level === 40);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ instance: 'acme-1', suppressed: 0 });
});
