import { timingSafeEqualString } from '@switchyard/core';
import type { onRequestAsyncHookHandler } from 'fastify';
import { bearerToken, unauthorized } from '../../admin/http.ts';
import { checkUiSession } from './session.ts';

/**
 * An `onRequest` hook that admits admin routes only with `Authorization: Bearer <adminToken>`
 * (compared in constant time), or the dashboard's session cookie (plus `x-switchyard-ui: 1` on
 * changes). Routes whose `config.auth` is `subscription` or `none` are left to
 * their own check. Without an admin token the admin API is closed: every admin call answers 401.
 * Running at `onRequest` means a refused caller never gets its body parsed or validated.
 *
 * @example
 * ```ts
 * v1.addHook('onRequest', adminAuth(process.env.SY_ADMIN_TOKEN));
 * ```
 */
export function adminAuth(adminToken: string | undefined): onRequestAsyncHookHandler {
  return async (request) => {
    const auth = request.routeOptions.config.auth ?? 'admin';
    if (auth !== 'admin') return;
    if (!adminToken) throw unauthorized('the admin API is closed: no admin token is configured');
    if (timingSafeEqualString(bearerToken(request), adminToken)) {
      request.credentialsChecked = true;
      return;
    }
    // The dashboard's session cookie stands in for the token (http/plugins/session.ts).
    const session = checkUiSession(request, adminToken);
    if (session === 'admitted') {
      request.credentialsChecked = true;
      return;
    }
    if (session === 'needs-header')
      throw unauthorized('a dashboard session needs the x-switchyard-ui: 1 header on changes');
    throw unauthorized();
  };
}
