/**
 * Dashboard sign-in sessions: the browser trades the admin token once for a random session id in an
 * `HttpOnly; SameSite=Strict` cookie, so the token never sits in the URL, in page script or in
 * storage the page can read. The store is in memory (per process, lost on restart: the operator
 * signs in again) and shared by every app in the process; each session is bound to a digest of the
 * token it was opened with, so an app with another token never admits it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/** The cookie that carries the session id. */
export const SESSION_COOKIE = 'sy_ui_session';
/** The header every cookie-authenticated change must carry (a cross-site form cannot set it). */
export const UI_HEADER = 'x-switchyard-ui';

const DEFAULT_TTL_MS = 12 * 3_600_000;
// Bounds memory if someone signs in in a loop: the oldest sessions go first.
const MAX_SESSIONS = 1_000;

interface Session {
  tokenDigest: Buffer;
  expiresAt: number;
}

const sessions = new Map<string, Session>();

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

function sweep(now: number): void {
  for (const [id, s] of sessions) if (s.expiresAt <= now) sessions.delete(id);
  while (sessions.size >= MAX_SESSIONS) {
    const oldest = sessions.keys().next().value;
    if (oldest === undefined) break;
    sessions.delete(oldest);
  }
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
 * Opens a session for a caller that presented the right admin token. Returns the session id and
 * its lifetime, for the `Set-Cookie` header.
 *
 * @example
 * ```ts
 * const { id, maxAgeSeconds } = openUiSession(adminToken);
 * reply.header('set-cookie', sessionCookie(id, maxAgeSeconds, request.protocol === 'https'));
 * ```
 */
export function openUiSession(
  adminToken: string,
  ttlMs = DEFAULT_TTL_MS,
): { id: string; maxAgeSeconds: number } {
  const now = Date.now();
  sweep(now);
  const id = randomBytes(32).toString('base64url');
  sessions.set(id, { tokenDigest: digest(adminToken), expiresAt: now + ttlMs });
  return { id, maxAgeSeconds: Math.floor(ttlMs / 1000) };
}

/** Ends the session of this request's cookie, if any. @example `closeUiSession(request);` */
export function closeUiSession(request: FastifyRequest): void {
  const id = cookieValue(request, SESSION_COOKIE);
  if (id) sessions.delete(id);
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
 * token check fails.
 *
 * @example
 * ```ts
 * if (checkUiSession(request, adminToken) === 'admitted') return;
 * ```
 */
export function checkUiSession(
  request: FastifyRequest,
  adminToken: string,
): 'admitted' | 'absent' | 'needs-header' {
  const id = cookieValue(request, SESSION_COOKIE);
  if (!id) return 'absent';
  const session = sessions.get(id);
  if (!session) return 'absent';
  if (session.expiresAt <= Date.now()) {
    sessions.delete(id);
    return 'absent';
  }
  if (!timingSafeEqual(session.tokenDigest, digest(adminToken))) return 'absent';
  const safe = request.method === 'GET' || request.method === 'HEAD' || request.method === 'OPTIONS';
  if (!safe && request.headers[UI_HEADER] !== '1') return 'needs-header';
  return 'admitted';
}
