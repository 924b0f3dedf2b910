/**
 * The commands' SQL against Postgres, where a statement's choice of rows is the behaviour (the
 * subsystem's flows are in commands.int.test.ts).
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { expect, it } from 'vitest';
import { useMigratedDatabase } from '../storage/database.test-support.ts';
import * as commandStore from './store.ts';

const database = useTestDatabase();
const store = useMigratedDatabase(database);

/** Queues a cancel of `entity` (its ordering key), `pending` and due `dueAgo` ago. */
async function queue(name: string, entity: string | null, dueAgo: string, attempts = 0): Promise<void> {
  await sql`insert into switchyard.commands (id, type, instance_id, connector, subject, ordering_key, data, sent_by,
      request_hash, attempts, next_attempt_at, idempotency_key)
    values (gen_random_uuid(), 'appointment.cancel', 'dp', 'docplanner', ${entity}, ${entity}, '{}'::jsonb, 'crm',
      'hash', ${attempts}, now() - ${dueAgo}::interval, ${name})`.execute(store.db);
}

const ids = async (names: string[]) =>
  (
    await sql<{
      id: string;
    }>`select id from switchyard.commands where idempotency_key = any(${names}::text[])`.execute(store.db)
  ).rows
    .map((r) => r.id)
    .sort();

it('the sweep takes the commands first in line whose job may be lost, not those waiting behind another', async () => {
  // A vendor down: 150 entities, each with a cancel waiting for its retry in a minute and a
  // reschedule sent since, due (its job found it blocked and ended).
  for (let i = 1; i <= 150; i++) {
    await queue(`retrying-${i}`, `appointment:${i}`, '-1 minute', 1);
    await queue(`behind-${i}`, `appointment:${i}`, '1 minute');
  }
  // Commands whose jobs were lost: one first in line for its entity, one without an entity, and
  // one whose process died running it.
  await queue('lost-head', 'appointment:lost', '10 seconds');
  await queue('lost-loose', null, '10 seconds');
  await queue('crashed', 'appointment:crashed', '10 seconds', 1);
  await sql`update switchyard.commands set status = 'running', locked_until = now() - interval '1 second'
    where idempotency_key = 'crashed'`.execute(store.db);
  // Due only just now: its job is on its way (inside the grace).
  await queue('fresh', 'appointment:fresh', '0 seconds');

  const stranded = (await commandStore.strandedCommands(store.db, 2000, 100)).map((c) => c.id);
  // The 150 waiting ones were the oldest due rows: they filled the limit, and the lost ones were
  // never re-sent while the vendor stayed down.
  expect(stranded.sort()).toEqual(await ids(['lost-head', 'lost-loose', 'crashed']));

  // Once an entity's first command is done, the one behind it is first in line: if its job is
  // lost too, the sweep finds it.
  await sql`update switchyard.commands set status = 'succeeded', completed_at = now()
    where idempotency_key = 'retrying-7'`.execute(store.db);
  expect((await commandStore.strandedCommands(store.db, 2000, 100)).map((c) => c.id).sort()).toEqual(
    await ids(['lost-head', 'lost-loose', 'crashed', 'behind-7']),
  );
});

it('the sweep leaves out the commands its process holds parked, and finds a lost one past the limit behind them', async () => {
  // 120 bookings of one instance due and parked in the sweeping process (its share of slots is
  // taken), and one whose job was really lost, due the latest.
  for (let i = 1; i <= 120; i++) await queue(`parked-${i}`, null, `${200 - i} seconds`);
  await queue('lost-late', null, '5 seconds');
  const parked = await ids(Array.from({ length: 120 }, (_, i) => `parked-${i + 1}`));
  const stranded = (await commandStore.strandedCommands(store.db, 2000, 100, parked)).map((c) => c.id);
  // Before: the 100 oldest parked ones, re-sent at every sweep only to be parked again, and the
  // lost one not among them.
  expect(stranded.filter((id) => parked.includes(id))).toEqual([]);
  expect(stranded).toContain((await ids(['lost-late']))[0]);
});

it('records a vendor call whose answer holds what Postgres refuses in text (a NUL), as U+FFFD', async () => {
  await queue('nul-answer', 'appointment:nul', '0 seconds');
  const [commandId] = await ids(['nul-answer']);
  const call = await commandStore.startCall(store.db, {
    commandId: commandId!,
    run: 0,
    attempt: 1,
    startedAt: new Date(),
    method: 'POST',
    url: 'https://vendor.example/cancel',
  });
  await commandStore.endCall(store.db, call, {
    statusCode: 500,
    latencyMs: 12,
    error: 'vendor said \u0000',
    responseSnippet: 'ok\u0000!',
  });
  const row = await sql<{ status_code: number; response_snippet: string; error: string }>`
    select status_code, response_snippet, error from switchyard.command_calls where id = ${call}::bigint`.execute(
    store.db,
  );
  expect(row.rows[0]).toEqual({
    status_code: 500,
    response_snippet: 'ok\uFFFD!',
    error: 'vendor said \uFFFD',
  });
});

it('a given-back try marks its calls: the next try, under the same attempt number, is told apart', async () => {
  await queue('given-back', 'appointment:given-back', '0 seconds');
  const [id] = await ids(['given-back']);
  const call = (claim: commandStore.CommandRow) =>
    commandStore.startCall(store.db, {
      commandId: id!,
      run: claim.run,
      attempt: claim.attempts,
      startedAt: new Date(),
      method: 'DELETE',
      url: 'https://vendor.example/visits/1',
    });
  const first = (await commandStore.claimCommand(store.db, id!, 60_000))!;
  await call(first);
  // The database failed the try after its call: given back, attempt 1 again.
  expect(
    await commandStore.giveBackCommand(store.db, id!, first, 0, { kind: 'transient', message: 'disk full' }),
  ).toMatchObject({ status: 'pending', attempts: 0 });
  const second = (await commandStore.claimCommand(store.db, id!, 60_000))!;
  expect(second.attempts).toBe(first.attempts);
  await call(second);
  // Before: two calls as attempt 1 and nothing to tell them apart.
  expect((await commandStore.listCalls(store.db, id!)).map((c) => [c.run, c.attempt, c.given_back])).toEqual([
    [1, 1, true],
    [1, 1, false],
  ]);
  // A give-back that no longer holds the claim (the first's, long gone) marks nothing.
  expect(
    await commandStore.giveBackCommand(store.db, id!, first, 0, { kind: 'transient', message: 'late' }),
  ).toBeUndefined();
  expect((await commandStore.listCalls(store.db, id!)).map((c) => c.given_back)).toEqual([true, false]);
});
