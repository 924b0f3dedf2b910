/**
 * DocumentReference's status rule is written twice: in fhir/map.ts (what the resource shows) and in
 * SQL (DOCUMENT_STATUS in ./current.ts, what a status search filters on, and migration 44's index
 * and statistics, which serve that search). Nothing else compares them: a change to one alone
 * would make a search miss documents whose resource has the status asked for, or leave the index
 * unused (Postgres matches an index expression only when it reads the same). Here a table of
 * documents — deleted, with each status, without one, with values the schema does not allow — is
 * stored through the projection as the hub stores events, and each document's status is read both
 * ways.
 */
import { randomUUID } from 'node:crypto';
import type { DocumentReference } from '@medplum/fhirtypes';
import { type EventEnvelope, getSchemas } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toFhir } from '../fhir/map.ts';
import { type Database, openDatabase } from '../storage/db.ts';
import { migrate } from '../storage/migrations.ts';
import { DOCUMENT_STATUS, projectStoredEvents, searchCurrentEntities } from './current.ts';

const pgdb = useTestDatabase();
let database: Database;

/** The core schemas' example of a clinical note (`document.created`). */
const example = getSchemas()
  .flatMap((s) => (s as { examples?: EventEnvelope[] }).examples ?? [])
  .find((e) => e.specversion && e.type === 'document.created')!;

/** No `status` key at all (the vendor gave none). */
const ABSENT = Symbol('absent');

/** [case, event type, data.status]. The last rows are values the schema refuses, stored anyway by an older version or by hand. */
const CASES: [string, string, unknown][] = [
  ['created, current', 'document.created', 'current'],
  ['created, superseded', 'document.created', 'superseded'],
  ['updated, superseded', 'document.updated', 'superseded'],
  ['updated, entered-in-error', 'document.updated', 'entered-in-error'],
  ['created, no status', 'document.created', ABSENT],
  ['updated, status null', 'document.updated', null],
  ['deleted, current', 'document.deleted', 'current'],
  ['deleted, superseded', 'document.deleted', 'superseded'],
  ['deleted, no status', 'document.deleted', ABSENT],
  ['deleted, status null', 'document.deleted', null],
  ['odd: empty string', 'document.created', ''],
  ['odd: upper case', 'document.updated', 'CURRENT'],
  ['odd: spaces', 'document.created', ' current '],
  ['odd: unknown word', 'document.created', 'final'],
  ['odd: a number', 'document.created', 5],
  ['odd: a boolean', 'document.updated', false],
];

/** The subject of each case, in CASES order. */
const subjects: string[] = [];
const envelopes: EventEnvelope[] = [];

beforeAll(async () => {
  database = openDatabase(pgdb.url(), { max: 1 });
  await migrate(database.db);
  for (const [i, [, type, status]] of CASES.entries()) {
    const hubId = randomUUID();
    const envelope = structuredClone(example);
    const data: Record<string, unknown> = { ...(envelope.data as Record<string, unknown>), id: hubId };
    delete data.status;
    if (status !== ABSENT) data.status = status;
    Object.assign(envelope, { id: randomUUID(), type, subject: `document/${hubId}`, data });
    subjects.push(envelope.subject as string);
    envelopes.push(envelope);
    // Stored as the hub stores an event: the projection's own upsert (event_type from the event).
    await sql`with stored (id, type, source, subject, sequence, time, envelope) as (
        values (${envelope.id}::uuid, ${type}, ${envelope.source}, ${envelope.subject}, ${i + 1}::bigint,
          ${envelope.time}::timestamptz, ${JSON.stringify(envelope)}::jsonb)),
      ${projectStoredEvents()} select 1`.execute(database.db);
  }
});

afterAll(async () => {
  await database?.close();
});

/** The status the FHIR resource shows, as a search parameter's text (`5` for 5). */
function resourceStatus(envelope: EventEnvelope): string {
  const resource = toFhir(envelope)?.resource as DocumentReference | undefined;
  if (resource?.resourceType !== 'DocumentReference') throw new Error(`${envelope.type} maps to no document`);
  return String(resource.status);
}

describe('a document status is the same in the FHIR resource and in the SQL the search filters on', () => {
  it('DOCUMENT_STATUS gives each document the status its resource shows', async () => {
    const { rows } = await sql<{ subject: string; status: string | null }>`
      select subject, ${DOCUMENT_STATUS} as status from switchyard.current_entities where kind = 'document'`.execute(
      database.db,
    );
    const bySql = new Map(rows.map((r) => [r.subject, r.status]));
    const disagree = CASES.flatMap(([name], i) => {
      const fhir = resourceStatus(envelopes[i]!);
      const stored = bySql.get(subjects[i]!);
      return fhir === stored ? [] : [{ name, fhir, sql: stored }];
    });
    expect(disagree).toEqual([]);
    expect(rows).toHaveLength(CASES.length);
  });

  it("a status search finds each document under its resource's status, and under no other", async () => {
    const statuses = [...new Set(envelopes.map(resourceStatus))];
    const found = new Map<string, string[]>();
    for (const status of statuses)
      for (const row of await searchCurrentEntities(database.db, {
        kind: 'document',
        statuses: [status],
        limit: 100,
      }))
        found.set(row.subject, [...(found.get(row.subject) ?? []), status]);
    const wrong = CASES.flatMap(([name], i) => {
      const expected = [resourceStatus(envelopes[i]!)];
      const got = found.get(subjects[i]!) ?? [];
      return JSON.stringify(got) === JSON.stringify(expected) ? [] : [{ name, expected, got }];
    });
    expect(wrong).toEqual([]);
  });

  it("the search's expression is the one migration 44's index and statistics hold, so they serve it", async () => {
    // Postgres's own reading of each: the index's and statistics' expressions as stored, and the
    // search's as Postgres stores it in an index made here and rolled back.
    const probeSql = sql`create index document_status_probe on switchyard.current_entities (${DOCUMENT_STATUS}) where kind = 'document'`;
    const client = await database.pool.connect();
    let read: { index: Row[]; stats: string[][] };
    type Row = { name: string; expression: string; predicate: string | null };
    try {
      await client.query('begin');
      await client.query(probeSql.compile(database.db).sql);
      const index = await client.query<Row>(`
        select c.relname as name, pg_get_expr(i.indexprs, i.indrelid) as expression,
          pg_get_expr(i.indpred, i.indrelid) as predicate
        from pg_index i join pg_class c on c.oid = i.indexrelid
        where c.relname in ('current_entities_document_status_idx', 'document_status_probe')`);
      const stats = await client.query<{ expressions: string[] }>(`
        select pg_get_statisticsobjdef_expressions(oid) as expressions from pg_statistic_ext
        where stxname = 'current_entities_domain_stats'`);
      read = { index: index.rows, stats: stats.rows.map((r) => r.expressions) };
    } finally {
      await client.query('rollback');
      client.release();
    }
    const index = read.index.find((r) => r.name === 'current_entities_document_status_idx');
    const probe = read.index.find((r) => r.name === 'document_status_probe');
    expect(index?.expression).toBeDefined();
    expect(index?.expression).toBe(probe?.expression);
    // The search's kind filter is the index's predicate.
    expect(index?.predicate).toBe(probe?.predicate);
    expect(read.stats[0]).toContain(probe?.expression);
  });
});
