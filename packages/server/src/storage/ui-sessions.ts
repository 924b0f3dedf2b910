/**
 * The dashboard's sign-in sessions (table `switchyard.ui_sessions`, migration 46), one named
 * function per statement. The keys are digests computed by the caller (http/plugins/session.ts):
 * `idDigest` is the SHA-256 of the session id, `tokenMac` the HMAC-SHA256 keyed by the admin token
 * over the session id, so a row holds neither the cookie's value nor the token. Times are the
 * database's clock, so replicas with drifting clocks agree on when a session ends.
 */
import { sql } from 'kysely';
import type { Executor } from './db.ts';

/**
 * Stores a new session that ends `lifetimeMs` from now, and in the same statement removes the
 * expired sessions and, beyond the newest `max - 1` live ones, the oldest: the table never holds
 * more than `max` sessions after a sign-in, whoever signs in in a loop.
 *
 * @example
 * ```ts
 * await insertUiSession(db, sha256(id), hmac(adminToken, id), 12 * 3_600_000, 1000);
 * ```
 */
export async function insertUiSession(
  db: Executor,
  idDigest: Buffer,
  tokenMac: Buffer,
  lifetimeMs: number,
  max: number,
): Promise<void> {
  await sql`
    with trimmed as (
      delete from switchyard.ui_sessions
      where expires_at <= now()
         or id_digest in (select id_digest from switchyard.ui_sessions where expires_at > now()
                          order by created_at desc, id_digest offset ${Math.max(0, max - 1)})
    )
    insert into switchyard.ui_sessions (id_digest, token_mac, expires_at)
    values (${idDigest}, ${tokenMac}, now() + ${lifetimeMs}::double precision * interval '1 millisecond')`.execute(
    db,
  );
}

/**
 * The stored MAC of a session, and whether it has expired; undefined when no such session is
 * stored. Reads only (an expired one is deleted by the caller, {@link deleteUiSession}), so the
 * check works on a database that accepts no writes.
 *
 * @example
 * ```ts
 * const found = await findUiSession(db, sha256(id)); // { tokenMac: <Buffer ...>, expired: false }
 * ```
 */
export async function findUiSession(
  db: Executor,
  idDigest: Buffer,
): Promise<{ tokenMac: Buffer; expired: boolean } | undefined> {
  const r = await sql<{ token_mac: Buffer; expired: boolean }>`
    select token_mac, expires_at <= now() as expired
    from switchyard.ui_sessions where id_digest = ${idDigest}`.execute(db);
  const row = r.rows[0];
  return row ? { tokenMac: row.token_mac, expired: row.expired } : undefined;
}

/**
 * Deletes a session (sign-out, or an expired one met by a check); false when none was stored.
 *
 * @example
 * ```ts
 * await deleteUiSession(db, sha256(id)); // true
 * ```
 */
export async function deleteUiSession(db: Executor, idDigest: Buffer): Promise<boolean> {
  const r = await sql`delete from switchyard.ui_sessions where id_digest = ${idDigest}`.execute(db);
  return Number(r.numAffectedRows ?? 0) > 0;
}

/**
 * Deletes every session that had ended by `now` (the retention purge); how many.
 *
 * @example
 * ```ts
 * await purgeExpiredUiSessions(db, new Date()); // 3
 * ```
 */
export async function purgeExpiredUiSessions(db: Executor, now: Date): Promise<number> {
  const r = await sql`delete from switchyard.ui_sessions where expires_at <= ${now}`.execute(db);
  return Number(r.numAffectedRows ?? 0);
}
