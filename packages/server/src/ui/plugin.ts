/**
 * The operator dashboard: static ES modules (Preact + htm, no build step) served under `/ui`, a
 * sign-in route that trades the admin token for a session cookie, and the extra admin routes the
 * page needs. Everything is served by the hub itself: no request leaves the machine.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import { timingSafeEqualString } from '@switchyard/core';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { unauthorized } from '../admin/http.ts';
import { etagOf, notModified } from '../http/etag.ts';
import {
  closeUiSession,
  openUiSession,
  sessionCookie,
  UI_HEADER,
  type UiSessionLimits,
} from '../http/plugins/session.ts';
import type { Hub } from '../pipeline/hub.ts';
import { dashboardApiRoutes } from './api-extras.ts';

/** Options of {@link registerUi} and {@link uiPlugin}. */
export interface UiOptions {
  hub: Hub;
  /** The admin token the sign-in form must be given. Absent: nobody can sign in. */
  adminToken: string | undefined;
  /**
   * How long a sign-in lasts (ms) and how many sessions the database keeps at once. Defaults:
   * `CONFIG_DEFAULTS.dashboard` (12 hours, 1000).
   */
  sessions?: UiSessionLimits;
  /**
   * The hub's public URL (`server.publicUrl`). When it is https, a request for its host gets a
   * `Secure` session cookie even over plain HTTP: a TLS-terminating proxy not listed in
   * `server.trustedProxies` forwards it so.
   */
  publicUrl?: string | undefined;
}

const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));

// The browser resolves `preact`, `preact/hooks` and `htm` through the page's import map.
const VENDOR: Record<string, string> = {
  'preact.mjs': 'preact',
  'hooks.mjs': 'preact/hooks',
  'htm.mjs': 'htm',
};

function loadVendor(): Map<string, { body: string; etag: string }> {
  const files = new Map<string, { body: string; etag: string }>();
  for (const [name, specifier] of Object.entries(VENDOR)) {
    const body = readFileSync(fileURLToPath(import.meta.resolve(specifier)), 'utf8');
    files.set(name, { body, etag: etagOf(body) });
  }
  return files;
}

/** The page's Content-Security-Policy: only this origin, plus the one inline import map by hash. */
function contentSecurityPolicy(indexHtml: string): string {
  const match = /<script type="importmap">([\s\S]*?)<\/script>/.exec(indexHtml);
  const hash = match ? `'sha256-${createHash('sha256').update(match[1]!).digest('base64')}'` : '';
  return [
    "default-src 'self'",
    `script-src 'self' ${hash}`.trim(),
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}

/**
 * Whether the browser reached this request over HTTPS: the request itself (TLS here, or
 * `X-Forwarded-Proto` from a trusted proxy), or its host is that of an https `publicUrl`, which
 * only a TLS-terminating proxy forwards as plain HTTP. Without the second, the session cookie of
 * a hub behind a proxy not listed in `trustedProxies` lacked `Secure`, and a browser sent it over
 * any plain-HTTP request to that host (an address typed without https:// that the proxy
 * redirects), readable on the network. A request for another host (the hub's own address, reached
 * directly) is not taken for one: a `Secure` cookie would never come back over it.
 */
function secureOrigin(publicUrl: string | undefined): (request: FastifyRequest) => boolean {
  let host: string | undefined;
  if (publicUrl !== undefined) {
    const url = URL.parse(publicUrl);
    if (url?.protocol === 'https:') host = url.host.toLowerCase();
  }
  return (request) =>
    request.protocol === 'https' || (host !== undefined && request.host.toLowerCase() === host);
}

/**
 * The dashboard as a fastify plugin: `/ui/` (the page and its modules), `/ui/session` (sign in,
 * check, sign out) and `/v1/dashboard/...` (admin routes behind the admin token or the session).
 * Hand it to `buildApp({ plugins: [...] })`: fastify takes no plugin once the app is ready.
 *
 * @example
 * ```ts
 * const app = await buildApp({ hub, adminToken, plugins: [uiPlugin({ hub, adminToken })] });
 * await app.listen({ port: 8080 }); // open http://localhost:8080/ui/
 * ```
 */
export function uiPlugin(options: UiOptions): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async (app) => registerUi(app, options);
  Object.defineProperty(plugin, 'name', { value: 'switchyard-ui' });
  return plugin;
}

/**
 * Registers the dashboard's routes on `app` (call it inside a plugin, before the app is ready).
 *
 * @example
 * ```ts
 * await app.register(async (scope) => registerUi(scope, { hub, adminToken }));
 * ```
 */
export async function registerUi(app: FastifyInstance, options: UiOptions): Promise<void> {
  const indexHtml = readFileSync(`${STATIC_DIR}index.html`, 'utf8');
  const indexEtag = etagOf(indexHtml);
  const csp = contentSecurityPolicy(indexHtml);
  const isHttps = secureOrigin(options.publicUrl);
  const vendor = loadVendor();

  await app.register(async (api) =>
    dashboardApiRoutes(api, { hub: options.hub, adminToken: options.adminToken }),
  );

  await app.register(async (ui) => {
    // The static file server refuses a path with `..` or an empty segment (`/ui/../x`, `/ui//x`)
    // with 403, which the app's handler answered as a body that could not be parsed: the page has
    // no such file, as for any other it does not have. Other errors go on to the app's handler.
    ui.setErrorHandler((error, _request, reply) => {
      if ((error as { statusCode?: unknown }).statusCode === 403) return reply.callNotFound();
      throw error;
    });
    ui.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', csp);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
      reply.header('x-frame-options', 'DENY');
      // Revalidate every time (ETag): an upgraded hub serves its new page at once.
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-cache');
      return payload;
    });

    ui.get('/ui', async (_request, reply) => reply.redirect('/ui/'));
    // The page and its modules, revalidated by ETag (`no-cache`): without one every load fetched
    // them whole again (preact, htm), where the static files below answered 304.
    ui.get('/ui/', async (request, reply) => {
      reply.header('cache-control', 'no-cache').header('etag', indexEtag);
      if (notModified(request, indexEtag)) return reply.code(304).send();
      return reply.type('text/html; charset=utf-8').send(indexHtml);
    });
    ui.get<{ Params: { file: string } }>('/ui/vendor/:file', async (request, reply) => {
      const file = vendor.get(request.params.file);
      if (file === undefined) return reply.callNotFound();
      reply.header('cache-control', 'no-cache').header('etag', file.etag);
      if (notModified(request, file.etag)) return reply.code(304).send();
      return reply.type('text/javascript; charset=utf-8').send(file.body);
    });

    ui.post<{ Body: { token?: unknown } }>(
      '/ui/session',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['token'],
            properties: { token: { type: 'string', minLength: 1, maxLength: 1000 } },
          },
        },
      },
      async (request, reply) => {
        // Like every cookie-authenticated change: a cross-site form cannot set this header.
        if (request.headers[UI_HEADER] !== '1') throw unauthorized('sign in from the dashboard page');
        const token = typeof request.body.token === 'string' ? request.body.token : '';
        // Said as it is: no token signs in to a hub configured without one (the page shows this).
        if (!options.adminToken)
          throw unauthorized(
            'no token can sign in: the configuration sets no server.adminToken, so the admin API and the dashboard are closed',
          );
        if (!timingSafeEqualString(token, options.adminToken))
          throw unauthorized('that is not the admin token');
        const session = await openUiSession(options.hub.host.db, options.adminToken, options.sessions);
        reply.header('set-cookie', sessionCookie(session.id, session.maxAgeSeconds, isHttps(request)));
        reply.header('cache-control', 'no-store');
        return reply.code(204).send();
      },
    );

    ui.delete('/ui/session', async (request, reply) => {
      // The cookie is cleared even when its row cannot be deleted (503 while the database is
      // out): the browser signed out then kept the cookie, and the page reloaded after the outage
      // was signed in again. The row is left to expire, or to the retention purge.
      reply.header('set-cookie', sessionCookie('', 0, isHttps(request)));
      await closeUiSession(options.hub.host.db, request);
      return reply.code(204).send();
    });

    await ui.register(fastifyStatic, {
      root: STATIC_DIR,
      prefix: '/ui/',
      index: false,
      wildcard: true,
      cacheControl: false,
    });
  });
}
