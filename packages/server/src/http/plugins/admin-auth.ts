import { timingSafeEqualString } from '@switchyard/core';
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { bearerToken, unauthorized } from '../../admin/http.ts';
import type { Executor } from '../../storage/db.ts';
import { checkUiSession } from './session.ts';

/**
 * An `onRequest` hook that admits admin routes only with `Authorization: Bearer <adminToken>`
 * (compared in constant time), or the dashboard's session cookie (plus `x-switchyard-ui: 1` on
 * changes; the sessions are read from `db`, the hub's database: `hub.host.db`). Routes whose
 * `config.auth` is `subscription` or `none` are left to their own check. Without an admin token the
 * admin API is closed: every admin call answers 401. Running at `onRequest` means a refused caller
 * never gets its body parsed or validated.
 *
 * @example
 * ```ts
 * v1.addHook('onRequest', adminAuth(process.env.SY_ADMIN_TOKEN, hub.host.db));
 * ```
 */
export function adminAuth(adminToken: string | undefined, db: Executor): onRequestAsyncHookHandler {
  return async (request) => {
    const auth = request.routeOptions.config.auth ?? 'admin';
    if (auth !== 'admin') return;
    await requireAdmin(request, adminToken, db);
  };
}

/**
 * Admits the request as the admin (the admin token, or the dashboard's session) or rejects with 401
 * (with the database unreachable while a session is checked: the outage's error, answered 503), whatever
 * the route's `config.auth` says. For routes with a credential of their own that the admin may also
 * use (the commands routes): the hook above leaves a route that is not `admin` alone, so such a route
 * must end here when its own credential is absent, or it would be open to anyone.
 *
 * @example
 * ```ts
 * if (!token?.startsWith('sycmd_')) return requireAdmin(request, adminToken, db);
 * ```
 */
export async function requireAdmin(
  request: FastifyRequest,
  adminToken: string | undefined,
  db: Executor,
): Promise<void> {
  if (!adminToken) throw unauthorized('the admin API is closed: no admin token is configured');
  if (timingSafeEqualString(bearerToken(request), adminToken)) {
    request.credentialsChecked = true;
    return;
  }
  // The dashboard's session cookie stands in for the token (http/plugins/session.ts).
  const session = await checkUiSession(db, request, adminToken);
  if (session === 'admitted') {
    request.credentialsChecked = true;
    return;
  }
  if (session === 'needs-header')
    throw unauthorized('a dashboard session needs the x-switchyard-ui: 1 header on changes');
  throw unauthorized();
}
