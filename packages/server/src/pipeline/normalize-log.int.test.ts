/**
 * Warnings of the normalize worker that a fault repeats for every message and attempt: a vendor API
 * down through a backlog ("normalization will be retried"), a connector whose output does not match
 * the event schemas ("normalized output is invalid"). Each was a warning per message and attempt,
 * without bound; now at most one a minute per instance (logging/repeats.ts), the rest at debug.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import {
  behaviour,
  eventually,
  makeHub,
  push,
  resetBehaviour,
  setupInstance,
} from './fixtures.test-support.ts';
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
beforeEach(() => resetBehaviour());
afterAll(async () => {
  await hub?.stop();
  resetBehaviour();
});

/** Waits until `n` inbound messages whose dedupe key starts with `prefix` are settled. */
async function settled(prefix: string, n: number): Promise<void> {
  await eventually(async () => {
    const { rows } = await sql<{ n: string }>`select count(*) as n from switchyard.inbound_messages
      where dedupe_key like ${`${prefix}%`} and status in ('normalized', 'failed')`.execute(hub.host.db);
    return Number(rows[0]?.n) >= n;
  }, 20_000);
}

it('a vendor API failing every message is warned about once per instance, each retry at debug', async () => {
  const messages = 3;
  for (let i = 0; i < messages; i++) behaviour.flaky.set(`flaky-${i}`, 2);
  for (let i = 0; i < messages; i++)
    expect(
      (await hub.ingest('acme-1', push({ id: `flaky-${i}`, type: 'created', booking: `fb-${i}` }))).ok,
    ).toBe(true);
  await settled('flaky-', messages);
  const said = log.filter((l) => l.msg.startsWith('normalization will be retried'));
  expect(said).toHaveLength(messages * 2);
  const warnings = said.filter((l) => l.level === 40);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ instance: 'acme-1', suppressed: 0 });
});

it('a connector whose output is invalid for every message is warned about once per instance', async () => {
  const messages = 3;
  for (let i = 0; i < messages; i++)
    expect(
      (await hub.ingest('acme-1', push({ id: `invalid-${i}`, type: 'invalid', booking: `ib-${i}` }))).ok,
    ).toBe(true);
  await settled('invalid-', messages);
  const said = log.filter((l) => l.msg.startsWith('normalized output is invalid'));
  expect(said).toHaveLength(messages);
  expect(said.filter((l) => l.level === 40)).toHaveLength(1);
});
