/**
 * The rules of a migration's form (Migration in migrations.ts): an index on a table that already
 * exists is built concurrently, never in the migration's transaction.
 */
import { describe, expect, it } from 'vitest';
import { migrations } from './migrations.ts';

/**
 * Migrations released before the runner built indexes concurrently (46's) whose transaction still
 * builds or drops indexes: they run only on a database older than 32, and some of their indexes
 * need a column their own `sql` adds (11's `body_id`), which a concurrent build before it cannot.
 */
const BUILT_IN_THEIR_TRANSACTION = 31;

/** Tables the statement creates (`create table [if not exists] switchyard.x`). */
function tablesCreated(text: string): Set<string> {
  return new Set([...text.matchAll(/create table (?:if not exists )?switchyard\.(\w+)/gi)].map((m) => m[1]!));
}

describe('migration form', () => {
  it('builds every index on an existing table concurrently and drops none in a transaction', () => {
    const wrong: string[] = [];
    for (const m of migrations) {
      if (m.version <= BUILT_IN_THEIR_TRANSACTION) continue;
      const created = tablesCreated(m.sql);
      for (const build of m.sql.matchAll(
        /create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?(\w+)\s+on\s+(?:only\s+)?switchyard\.(\w+)/gi,
      ))
        if (!created.has(build[2]!))
          wrong.push(`${m.version}: ${build[1]} on ${build[2]} in its transaction`);
      for (const drop of m.sql.matchAll(/drop\s+index\s+(?:if\s+exists\s+)?([\w.]+)/gi))
        wrong.push(`${m.version}: drop index ${drop[1]} in its transaction`);
    }
    expect(wrong).toEqual([]);
  });

  it('gives each concurrent index an unqualified name and a table of the switchyard schema', () => {
    const indexes = migrations.flatMap((m) => m.indexes ?? []);
    expect(indexes.length).toBeGreaterThan(0);
    for (const index of indexes) {
      expect(index.name).toMatch(/^[a-z_][a-z0-9_]*$/);
      expect(index.on).toMatch(/^switchyard\.\w+\s/);
    }
    for (const name of migrations.flatMap((m) => m.dropIndexes ?? []))
      expect(name).toMatch(/^[a-z_][a-z0-9_]*$/);
  });
});
