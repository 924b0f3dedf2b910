/**
 * A hub names every session it keeps (pools, LISTEN connection, pg-boss) with its session tag,
 * which is how the other processes tell whether it is alive (storage/db.ts, `sessionsConnected`),
 * even when the database URL names the application itself: pg reads the URL's parameters last, so
 * kept, `application_name=crm` named every session `crm` and the hub looked gone to the others.
 */
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import pino from 'pino';
import { expect, it } from 'vitest';
import { sessionApplicationName } from '../storage/db.ts';
import { makeHub } from './fixtures.test-support.ts';

const database = useTestDatabase();

it('names its sessions with its tag when the database URL sets application_name, and says it left that out', async () => {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const url = new URL(database.url());
  url.searchParams.set('application_name', 'crm');
  const hub = await makeHub(url.toString(), { logger, options: { queue: true } });
  await hub.start();
  try {
    const names = await sql<{ application_name: string; n: number }>`
      select application_name, count(*)::int as n from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() group by application_name`.execute(
      hub.host.db,
    );
    const byName = new Map(names.rows.map((r) => [r.application_name, r.n]));
    expect(byName.get('crm')).toBeUndefined();
    // The LISTEN connection, pg-boss's and the pool's: more than the one running this query.
    expect(byName.get(sessionApplicationName(hub.host.sessionTag))).toBeGreaterThanOrEqual(2);
    expect(lines.map((l) => l.msg)).toContainEqual(
      expect.stringContaining('sets application_name: left out'),
    );
  } finally {
    await hub.stop();
  }
});
