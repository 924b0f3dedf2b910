/**
 * A command credential created for a subscription deleted meanwhile: `createCredential` looks the
 * subscription up, then inserts the credential, whose foreign key refused it when the delete had
 * committed in between (23503 command_credentials_subscription_id_fkey): a 500 to the caller of
 * `POST /v1/subscriptions/{id}/command-credentials`. It answers 404 now, as the lookup would have a
 * moment later. The delete is held uncommitted until the insert waits on it (the lookup still sees
 * the subscription), then committed. The other writers of this race:
 * pipeline/subscription-gone.int.test.ts.
 */
import { isSwitchyardError } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { makeHub } from '../pipeline/fixtures.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { until } from '../storage/locks.test-support.ts';
import { type Commands, createCommands } from './index.ts';

const database = useTestDatabase();
let commands: Commands;
let hub: Hub;

beforeAll(async () => {
  commands = createCommands({ retentionCron: false });
  hub = await makeHub(database.url(), { ...commands.hooks, options: { queue: true } });
  await hub.start();
  await commands.start(hub.host);
});
afterAll(async () => {
  await commands?.stop();
  await hub?.stop();
});

it('a credential for a subscription deleted while it is created answers 404', async () => {
  await hub.subscriptions.create({
    id: 'gone-cred',
    url: 'http://127.0.0.1:9/never-reached',
    allowPrivateAddresses: true,
  });
  const deleter = new pg.Client({ connectionString: database.url() });
  await deleter.connect();
  try {
    await deleter.query('begin');
    await deleter.query('delete from switchyard.subscriptions where id = $1', ['gone-cred']);
    const creating = commands.createCredential('gone-cred').then(
      () => undefined,
      (error: unknown) => error,
    );
    await until(async () => {
      const r = await sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'
          and query ilike '%command_credentials%'`.execute(hub.host.db);
      return r.rows[0]!.n === 1;
    });
    await deleter.query('commit');
    const error = await creating;
    // On the old code: the Postgres error itself (code 23503), answered 500.
    expect(isSwitchyardError(error) ? error.code : (error as { code?: string } | undefined)?.code).toBe(
      'SY_PIPELINE_NOT_FOUND',
    );
  } finally {
    await deleter.end();
  }
});
