import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../admin/http.ts';
import { reportDatabaseUnavailable } from '../../storage/unavailable.ts';
import { redactUrl } from '../../telemetry/fastify.ts';
import { type ProblemDocument, problemFromError, problemOf } from '../errors.ts';
import type { RouteTable } from '../route-table.ts';
import { endLingeringConnections, lingerAfterResponse } from '../security/request-limits.ts';

/**
 * The request path without its query string, as problem answers show it (`instance`, and the
 * detail of a route not found). A push's path below `/hooks/{instance}` may be its credential
 * (Instinctive Notes' and Clockwise.MD's path modes), so it is cut as in the request log
 * ({@link redactUrl}): a vendor's delivery log, or a proxy keeping failed answers, must not end up
 * holding the secret.
 *
 * @example
 * ```ts
 * pathOf(request); // '/hooks/in-main/[redacted]' for POST /hooks/in-main/<secret>?x=1
 * ```
 */
export function pathOf(request: FastifyRequest): string {
  const q = request.url.indexOf('?');
  return redactUrl(q === -1 ? request.url : request.url.slice(0, q));
}

/**
 * Sends a problem document as `application/problem+json`. One that closes the connection before the
 * request's body came whole (a refusal: `Connection: close`) closes it lingering, so that the
 * client reads the answer ({@link lingerAfterResponse}).
 */
export function sendProblem(
  reply: FastifyReply,
  problem: ProblemDocument,
  headers: Record<string, string> = {},
) {
  reply.code(problem.status).headers(headers).type('application/problem+json; charset=utf-8');
  if (reply.getHeader('connection') === 'close') lingerAfterResponse(reply.request.raw, reply.raw);
  return reply.send(JSON.stringify(problem));
}

/**
 * Makes every error answer an RFC 9457 problem: unknown routes (404), known paths with another
 * method (405 + `Allow`), fastify's body errors (413, 415, 400), schema validation (400 with
 * `errors[]`), `SwitchyardError`s (their registry status), anything unexpected (a bare 500,
 * logged with the request id) and requests arriving while the server closes (503, see
 * {@link refuseBeforeRouting}). Registered on the root instance so it covers every plugin; create
 * the app with `return503OnClosing: false`.
 *
 * @example
 * ```ts
 * installProblemHandling(app, routes);
 * ```
 */
export function installProblemHandling(app: FastifyInstance, routes: RouteTable): void {
  refuseBeforeRouting(app);
  refuseUnmetExpectations(app);
  app.setErrorHandler((error, request, reply) => {
    const { problem, headers, internal } = problemFromError(error, pathOf(request));
    // fastify's words ("Request body is too large") left the sender guessing by how much.
    if (problem.code === 'SY_HTTP_BODY_TOO_LARGE')
      problem.detail = `the request body is larger than the limit of ${request.routeOptions.bodyLimit} bytes (server.bodyLimit)`;
    if (internal) request.log.error({ err: error }, 'unexpected error answering a request');
    else if (problem.code === 'SY_STORAGE_UNAVAILABLE')
      reportDatabaseUnavailable(request.log, error, 'requests are answered 503');
    // The readiness probe reported its own failure, rate-limited (routes/health.ts).
    else if (problem.status >= 500 && problem.code !== 'SY_HTTP_NOT_READY')
      request.log.warn({ code: problem.code }, problem.detail);
    return sendProblem(reply, problem, headers);
  });

  app.setNotFoundHandler((request, reply) => {
    const path = pathOf(request);
    const allowed = routes.methodsFor(path);
    const error =
      allowed.length > 0 && !allowed.includes(request.method)
        ? new HttpError('SY_HTTP_METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${path}`, {
            headers: { allow: allowed.join(', ') },
          })
        : new HttpError('SY_HTTP_NOT_FOUND', `no route ${request.method} ${path}`);
    const { problem, headers } = problemFromError(error, path);
    return sendProblem(reply, problem, headers);
  });
}

/**
 * Answers a request whose `Expect` is not `100-continue` (which Node answers itself) with a 417
 * `SY_HTTP_BAD_REQUEST` problem and `Connection: close`, before its body is read. Node's own answer
 * was a bare 417 on a connection it kept alive: the unread body was then parsed as the next request.
 * Node emits such a request as `checkExpectation` instead of `request`: no route or hook sees it.
 */
function refuseUnmetExpectations(app: FastifyInstance): void {
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    const url = request.url ?? '';
    const q = url.indexOf('?');
    const expectation = String(request.headers.expect ?? '').slice(0, 40);
    const problem = problemOf(
      'SY_HTTP_BAD_REQUEST',
      `the hub cannot meet "Expect: ${expectation}" (it takes only 100-continue); send the request without it`,
      redactUrl(q === -1 ? url : url.slice(0, q)),
      { status: 417 },
    );
    const body = JSON.stringify(problem);
    response.writeHead(417, {
      'content-type': 'application/problem+json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      connection: 'close',
    });
    // The client may be sending its body already (it need not wait for a 100): read it to the
    // answer's end and drop it, as for any other refusal, instead of a reset.
    lingerAfterResponse(request, response);
    response.end(body);
  });
}

/** How often a closing server ends the keep-alive connections that went idle meanwhile, ms. */
const CLOSING_IDLE_SWEEP_MS = 100;

/**
 * Ends, until the server has closed, every keep-alive connection as soon as it is idle. The server
 * closes only once its last connection has ended, and Node ends only the connections idle when
 * `close` is called: one whose request was in progress then (a vendor push, an API call) stayed
 * open after its answer for fastify's keep-alive timeout, 72 s, and the graceful stop of the
 * process waited for it before stopping its command and delivery workers (a fault-injection
 * audit: a stop 70 s long after a push answered in 42 ms; a supervisor's 30 s grace kills it).
 */
function dropIdleConnectionsUntilClosed(app: FastifyInstance): void {
  const server = app.server;
  if (!server.listening) return;
  const timer = setInterval(() => server.closeIdleConnections(), CLOSING_IDLE_SWEEP_MS);
  timer.unref();
  server.once('close', () => clearInterval(timer));
}

/** Seconds a client is asked to wait (`Retry-After`) before trying a hub that is shutting down again. */
const SHUTDOWN_RETRY_AFTER_SECONDS = 5;

/**
 * Answers, before any other hook runs, the requests refused whatever their route, in one
 * `onRequest` hook (it passes almost every request: one hook, not one per reason):
 *
 * - those that still arrive while the server closes (on a busy keep-alive connection, or pipelined
 *   behind a request in progress): 503 `SY_HTTP_SHUTTING_DOWN` problem+json, `Retry-After` and
 *   `Connection: close`. Fastify's own `return503OnClosing` answers those in its plain JSON without
 *   `Retry-After`, so the app turns it off. Requests already being handled finish normally.
 * - an HTTP/1.1 request without a `Host` header (RFC 9112 §3.2: a server must answer it 400): a 400
 *   `SY_HTTP_BAD_REQUEST` problem and `Connection: close`. The server options turn off Node's own
 *   check (`requireHostHeader`, see `serverOptions`), whose 400 had an empty body. HTTP/1.0 has no
 *   Host to require.
 */
function refuseBeforeRouting(app: FastifyInstance): void {
  let closing = false;
  // preClose runs as fastify starts closing, before the server stops accepting.
  app.addHook('preClose', async () => {
    closing = true;
    dropIdleConnectionsUntilClosed(app);
    endLingeringConnections(app.server);
  });
  // Callback style, not async: a hook that does nothing on almost every request should not cost
  // each request a promise and its microtasks. Answered: `done` is not called (nor the reply
  // returned, which fastify would await).
  app.addHook('onRequest', (request, reply, done) => {
    if (closing) {
      const problem = problemOf(
        'SY_HTTP_SHUTTING_DOWN',
        'this hub process is shutting down; try again (another process may answer)',
        pathOf(request),
      );
      sendProblem(reply, problem, {
        'retry-after': String(SHUTDOWN_RETRY_AFTER_SECONDS),
        connection: 'close',
      });
      return;
    }
    const raw = request.raw;
    if (raw.headers.host !== undefined || raw.httpVersionMajor !== 1 || raw.httpVersionMinor < 1)
      return done();
    const problem = problemOf(
      'SY_HTTP_BAD_REQUEST',
      'an HTTP/1.1 request must carry a Host header',
      pathOf(request),
    );
    sendProblem(reply, problem, { connection: 'close' });
  });
}
