/**
 * Dashboard sign-in sessions: the browser trades the admin token once for a random session id in an
 * `HttpOnly; SameSite=Strict` cookie, so the token never sits in the URL, in page script or in
 * storage the page can read. The sessions are stored in the database (storage/ui-sessions.ts), so
 * every process of the hub admits a session any of them opened, a restart keeps it, and a sign-out
 * ends it everywhere at once. A row holds neither the id (its SHA-256 is the key: a stolen row is
 * no cookie) nor the token: each session is bound to the token it was opened with by an
 * HMAC-SHA256 keyed by the token over the id, so an app with another token never admits it, and a
 * leaked row, without the id, gives nothing to test token guesses against.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { CONFIG_DEFAULTS } from '../../config/schema.ts';
import { configDurationMs } from '../../config/units.ts';
import type { Executor } from '../../storage/db.ts';
import { deleteUiSession, findUiSession, insertUiSession } from '../../storage/ui-sessions.ts';

/** The cookie that carries the session id. */
export const SESSION_COOKIE = 'sy_ui_session';
/** The header every cookie-authenticated change must carry (a cross-site form cannot set it). */
export const UI_HEADER = 'x-switchyard-ui';

/** How long a session lasts and how many are kept; the defaults are `CONFIG_DEFAULTS.dashboard`. */
export interface UiSessionLimits {
  /** Lifetime of a session, ms. */
  lifetimeMs?: number;
  /** Sessions kept at once; a sign-in beyond it ends the oldest. */
  max?: number;
}

// What openUiSession makes: 32 random bytes, base64url. Anything else is no session, and is
// refused without a database read.
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

function idDigest(id: string): Buffer {
  return createHash('sha256').update(id).digest();
}

function tokenMac(adminToken: string, id: string): Buffer {
  return createHmac('sha256', adminToken).update(id).digest();
}

function sessionId(request: FastifyRequest): string | undefined {
  const id = cookieValue(request, SESSION_COOKIE);
  return id !== undefined && SESSION_ID.test(id) ? id : undefined;
}

/** The value of one cookie of a request's `Cookie` header. */
export function cookieValue(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Opens a session for a caller that presented the right admin token: stores it (ending expired
 * ones, and the oldest beyond the bound) and returns its id and lifetime, for the `Set-Cookie`
 * header.
 *
 * @example
 * ```ts
 * const { id, maxAgeSeconds } = await openUiSession(hub.host.db, adminToken);
 * reply.header('set-cookie', sessionCookie(id, maxAgeSeconds, request.protocol === 'https'));
 * ```
 */
export async function openUiSession(
  db: Executor,
  adminToken: string,
  limits: UiSessionLimits = {},
): Promise<{ id: string; maxAgeSeconds: number }> {
  const lifetimeMs = limits.lifetimeMs ?? configDurationMs(CONFIG_DEFAULTS.dashboard.sessionLifetime)!;
  const id = randomBytes(32).toString('base64url');
  await insertUiSession(
    db,
    idDigest(id),
    tokenMac(adminToken, id),
    lifetimeMs,
    limits.max ?? CONFIG_DEFAULTS.dashboard.sessions,
  );
  return { id, maxAgeSeconds: Math.floor(lifetimeMs / 1000) };
}

/**
 * Ends the session of this request's cookie, if any, in every process.
 *
 * @example
 * ```ts
 * await closeUiSession(hub.host.db, request);
 * ```
 */
export async function closeUiSession(db: Executor, request: FastifyRequest): Promise<void> {
  const id = sessionId(request);
  if (id) await deleteUiSession(db, idDigest(id));
}

/** The `Set-Cookie` value for a session id (an empty id with max-age 0 clears the cookie). */
export function sessionCookie(id: string, maxAgeSeconds: number, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}

/**
 * What the session cookie of a request is worth to an app whose admin token is `adminToken`:
 * `admitted`, `absent` (no cookie, unknown, expired or opened with another token), or
 * `needs-header` (a valid session on a change request without the `x-switchyard-ui` header: a
 * cross-site request, or a client that forgot it). The admin-auth hook calls this after the bearer
 * token check fails. One read by primary key; an expired session met here is deleted. Rejects when
 * the database cannot be reached (the caller answers 503, not a sign-in page).
 *
 * @example
 * ```ts
 * if ((await checkUiSession(hub.host.db, request, adminToken)) === 'admitted') return;
 * ```
 */
export async function checkUiSession(
  db: Executor,
  request: FastifyRequest,
  adminToken: string,
): Promise<'admitted' | 'absent' | 'needs-header'> {
  const id = sessionId(request);
  if (!id) return 'absent';
  const digest = idDigest(id);
  const session = await findUiSession(db, digest);
  if (!session) return 'absent';
  if (session.expired) {
    await deleteUiSession(db, digest);
    return 'absent';
  }
  const expected = tokenMac(adminToken, id);
  if (session.tokenMac.length !== expected.length || !timingSafeEqual(session.tokenMac, expected))
    return 'absent';
  const safe = request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS';
  if (!safe && request.headers[UI_HEADER] !== '1') return 'needs-header';
  return 'admitted';
}
