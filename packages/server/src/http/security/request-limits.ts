/**
 * Limits against clients that hold the hub's memory or connections without proving who they are:
 * the headers, body and whole-request timeouts of the HTTP server, and one bound on the request body
 * bytes held at once for requests whose credentials are not checked yet.
 *
 * A request's credentials are checked before its body is read wherever they can be (the admin
 * token at `onRequest`, a connector's `push.authenticate` on the head of a push): such a request
 * marks itself {@link FastifyRequest.credentialsChecked}, and its body costs nothing here. Every
 * other body — one a connector verifies itself (`push.verifyBody`, e.g. an HMAC signature), a
 * dashboard sign-in, a body sent to an unknown route — counts against the bound while it is held.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../admin/http.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * True once the request's credentials were accepted before its body is read (admin token,
     * a connector's head check). Its body then does not count as unauthenticated bytes.
     */
    credentialsChecked?: boolean;
  }
}

/**
 * A shared allowance of bytes: {@link take} refuses what would exceed the limit, {@link give}
 * returns bytes. Counts, never holds data.
 *
 * @example
 * ```ts
 * const budget = new ByteBudget(16 << 20);
 * if (!budget.take(chunk.length)) refuse();
 * // ... once the request is answered:
 * budget.give(chunk.length);
 * ```
 */
export class ByteBudget {
  readonly limit: number;
  #held = 0;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('the byte budget must be ≥ 1');
    this.limit = limit;
  }

  /** Bytes taken and not given back. */
  get held(): number {
    return this.#held;
  }

  /** Takes `bytes` if they fit under the limit; false (and nothing taken) otherwise. */
  take(bytes: number): boolean {
    if (this.#held + bytes > this.limit) return false;
    this.#held += bytes;
    return true;
  }

  /** Gives `bytes` back. */
  give(bytes: number): void {
    this.#held = Math.max(0, this.#held - bytes);
  }
}

/** Options of {@link installRequestLimits}; the defaults live in the config schema (`server.timeouts`, `server.unauthenticatedBodyBytes`). */
export interface RequestLimitsOptions {
  /** Time to receive a request's body once its headers are in, ms. */
  bodyTimeoutMs: number;
  /** Body bytes held at once, across connections, for requests whose credentials are not checked yet. */
  unauthenticatedBodyBytes: number;
  /** Bounds of the {@link lingerAfterRefusal} of a refused request's unread body (`server.timeouts.lingering`, `lingeringIdle`). */
  lingeringClose: LingeringCloseOptions;
}

/** How long a refused connection is drained before it is closed, ms. */
export interface LingeringCloseOptions {
  /** In all, from the end of the answer (nginx's `lingering_time`). */
  totalMs: number;
  /** Without a byte from the client (nginx's `lingering_timeout`). */
  idleMs: number;
}

function hasBody(headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length'];
  if (length !== undefined) return length !== '0';
  return headers['transfer-encoding'] !== undefined;
}

/**
 * Refuses a compressed body (`Content-Encoding: gzip`, `br`, `deflate`) rather than decoding it: no
 * vendor documents compressing its pushes, and a connector checks a signature over the bytes the
 * vendor signed. Read as they came, those bytes were a push answered "not valid UTF-8" (or a wrong
 * signature, 401) and an admin call "not valid JSON". 415 with `Accept-Encoding` is RFC 9110's
 * answer to a content coding the server does not take; the unread body closes the connection.
 * (The header on a request without a body encodes nothing: the caller asks only for one with.)
 */
function refuseCompressed(request: FastifyRequest): void {
  const encoding = request.headers['content-encoding']?.trim().toLowerCase();
  if (encoding === undefined || encoding === '' || encoding === 'identity') return;
  throw new HttpError(
    'SY_HTTP_UNSUPPORTED_MEDIA_TYPE',
    `the request body is compressed (Content-Encoding: ${encoding.slice(0, 40)}); the hub takes uncompressed bodies only: send it without Content-Encoding`,
    { headers: { 'accept-encoding': 'identity', connection: 'close' } },
  );
}

/** Whether the whole body has arrived and waits, unread, in the request stream. */
function bodyBuffered(request: FastifyRequest): boolean {
  if (request.raw.complete) return true;
  const length = request.headers['content-length'];
  return length !== undefined && request.raw.readableLength >= Number(length);
}

/** What a refused client still sends is dropped as it arrives: nothing is kept. */
function drop(): void {}

/**
 * How many refused connections of one server linger at once; a refusal past it closes at once, as
 * before lingering closes existed (its client may see a reset instead of the answer). A vendor
 * whose key is wrong has a few connections refused at a time; a flood of keyless pushes would
 * otherwise have the hub read (and drop) every one's body at once: 1,500 clients of 1 MB left the
 * process ~15 MB of allocator memory above what it held before (reliability/unauthenticated-flood.int).
 */
export const MAX_LINGERING_CONNECTIONS = 64;

/**
 * Each server's lingering close: its bounds ({@link installRequestLimits}), the connections
 * lingering now, and whether the server is closing ({@link endLingeringConnections}).
 */
const lingering = new WeakMap<
  object,
  { options: LingeringCloseOptions; sockets: Set<Socket>; closing: boolean }
>();

/**
 * Takes a place among the connections of the socket's server that linger now: the bounds of its
 * lingering close, or undefined when that server has none (a worker's health server) or
 * {@link MAX_LINGERING_CONNECTIONS} linger already.
 */
function admitLingering(socket: Socket): LingeringCloseOptions | undefined {
  // Node's server sets it on each of its connections.
  const server = (socket as Socket & { server?: object }).server;
  const state = server === undefined ? undefined : lingering.get(server);
  if (state === undefined || state.closing || state.sockets.size >= MAX_LINGERING_CONNECTIONS)
    return undefined;
  state.sockets.add(socket);
  socket.once('close', () => state.sockets.delete(socket));
  return state.options;
}

/**
 * Ends at once the connections of `server` that linger (and, from now on, a refusal's connection
 * closes without lingering): a closing server waits for its last connection, and a lingering one
 * held the stop of the process (Ctrl-C, SIGTERM) for up to `server.timeouts.lingering`. Called as
 * the app starts closing (plugins/problem.ts, `preClose`). Only those whose answer is written (the
 * socket's writable side ended): one admitted to linger whose refusal is still on its way (an
 * `onSend` hook, a slow write) was destroyed with it, and the client got no answer; it now closes
 * as its answer is done, without lingering ({@link lingerAfterResponse}).
 *
 * @example
 * ```ts
 * app.addHook('preClose', async () => endLingeringConnections(app.server));
 * ```
 */
export function endLingeringConnections(server: object): void {
  const state = lingering.get(server);
  if (state === undefined) return;
  state.closing = true;
  for (const socket of state.sockets) if (socket.writableEnded) socket.destroy();
}

/** Whether the server of `socket` is closing ({@link endLingeringConnections}). */
function serverClosing(socket: Socket): boolean {
  const server = (socket as Socket & { server?: object }).server;
  return server !== undefined && lingering.get(server)?.closing === true;
}

/**
 * A lingering close ({@link lingerAfterRefusal}) for the connection of an answer that closes it
 * (`Connection: close`) while the request's body has not come whole; call it before the response
 * ends. `sendProblem` (plugins/problem.ts) calls it for every such problem (only refusals close a
 * connection early: a check there, not a hook every answer, every push's 202, would run), and the
 * 417 of an unmet `Expect`, written by Node's server outside fastify, the same way.
 */
export function lingerAfterResponse(request: IncomingMessage, response: ServerResponse): void {
  if (request.complete || !hasBody(request.headers)) return;
  const socket = request.socket;
  const options = admitLingering(socket);
  if (options === undefined) return;
  // Node's own 'finish' listener, added when the response was made, runs before this one.
  response.once('finish', () => {
    // The server began closing while the answer was on its way: no lingering (close does not wait
    // for its bounds); Node's own close, after the answer, stays.
    if (serverClosing(socket)) return;
    // destroySoon ended the socket's writable side (the FIN goes after the answer) and waits for
    // it to finish to destroy the socket: that destroy is what resets the connection, so it is
    // taken over here.
    socket.removeListener('finish', socket.destroy);
    lingerAfterRefusal(socket, options);
  });
}

/**
 * Ends a connection whose answer was written to the socket itself (Node's client errors: the 408
 * of a request that did not arrive in time, the 400 or 431 of one its parser refused,
 * framework-errors.ts) with the same lingering close, or closes it as soon as the answer is written
 * when the server has none, is closing, or {@link MAX_LINGERING_CONNECTIONS} linger already.
 */
export function endLingering(socket: Socket): void {
  const options = admitLingering(socket);
  if (options === undefined) {
    // After the answer: destroy() dropped what was not written yet.
    socket.destroySoon();
    return;
  }
  // The FIN goes after the answer; the server's sockets are half-open, so the socket stays
  // readable until the client closes its side.
  socket.end();
  lingerAfterRefusal(socket, options);
}

/**
 * Closes the connection of a request refused before its body was read without losing the refusal:
 * a "lingering close", as nginx and Apache do. Node closes a `Connection: close` answer's socket as
 * soon as the answer is written (`resOnFinish` → `socket.destroySoon()`); the client is often still
 * sending its body then, and the kernel answers bytes that arrive on a closed socket, or wait
 * unread in it, with a reset, which makes the client drop the answer it had received: a vendor's
 * sender or curl reported "connection reset" instead of the 401 or 413 (about half the time with a
 * 3 MB body). Here, once the answer is written and the socket's writable side ended (the FIN
 * follows the answer), what the client still sends is read and dropped (never held, and never
 * counted against the unauthenticated bytes), and the socket is destroyed when the client closes
 * its side, or after `totalMs`, or after `idleMs` without data, whichever comes first.
 */
function lingerAfterRefusal(socket: Socket, options: LingeringCloseOptions): void {
  if (socket.destroyed) return;
  const close = () => {
    clearTimeout(total);
    socket.destroy();
  };
  const total = setTimeout(close, options.totalMs);
  total.unref();
  // Reset by every read, also those the HTTP parser takes from the socket itself.
  socket.setTimeout(options.idleMs, close);
  socket.once('end', close);
  socket.once('close', () => clearTimeout(total));
  // What follows is no request: taken from the HTTP parser (which read the rest of an announced
  // body into the request, and what came after it as a next request: a 400 and a reset), and
  // dropped as it comes. Adding a 'data' listener makes Node's server hand the socket's reads
  // back from its parser to the stream.
  socket.removeAllListeners('data');
  socket.on('data', drop);
  socket.resume();
  // The parser may have stopped the handle's reads while the request waited unread (Node's
  // server pauses the handle itself while its parser consumes it, leaving the stream "reading"
  // as far as resume() can tell): start them again as Node's own server does (onSocketResume).
  const handle = (socket as unknown as { _handle?: { reading?: boolean; readStart(): number } })._handle;
  if (handle && !handle.reading) {
    handle.reading = true;
    handle.readStart();
  }
}

/**
 * Adds a `preParsing` hook to the app that meters every request body: when the body is not complete
 * `bodyTimeoutMs` after the headers, the request gets `408 SY_HTTP_REQUEST_TIMEOUT`; while a body of
 * a request whose credentials are not checked yet would take the bytes held for such requests past
 * `unauthenticatedBodyBytes`, it gets `503 SY_HTTP_UNAUTHENTICATED_BODIES_FULL` with `Retry-After`.
 * Both answers close the connection (the rest of the body is never read into memory), and the
 * bytes are given back when the answer is done. Every answer that closes the connection before the
 * request's body has come whole (these, and the refusals of pushes, compressed and oversized
 * bodies) is followed by a bounded lingering close ({@link lingerAfterRefusal}). Call it on the root instance: its hook then runs
 * after every `onRequest` hook, once credentials checked there are known.
 *
 * @example
 * ```ts
 * const budget = installRequestLimits(app, { bodyTimeoutMs: 30_000, unauthenticatedBodyBytes: 16 << 20 });
 * budget.held; // bytes of not-yet-authenticated bodies in memory now
 * ```
 */
export function installRequestLimits(app: FastifyInstance, options: RequestLimitsOptions): ByteBudget {
  const budget = new ByteBudget(options.unauthenticatedBodyBytes);
  lingering.set(app.server, { options: options.lingeringClose, sockets: new Set(), closing: false });
  app.addHook('preParsing', async (request: FastifyRequest, reply: FastifyReply, payload) => {
    if (!hasBody(request.headers)) return payload;
    refuseCompressed(request);
    // Nothing to meter: an authenticated body counts against no budget, and this one is all in
    // memory already (a small push arrives with its head, and Node has buffered its body by the
    // time the async onRequest hooks are done), so its timeout cannot fire. Skipping the meter's
    // stream, timer and listeners is a measurable share of such a request's CPU.
    if (request.credentialsChecked === true && bodyBuffered(request)) return payload;
    let held = 0;
    let forwarding = false;
    const meter = new Transform({
      // Data flows only once the body parser reads: an error before it listens would be lost.
      read(size) {
        if (!forwarding) {
          forwarding = true;
          payload.on('data', forward);
        }
        Transform.prototype._read.call(this, size);
      },
      transform(chunk: Buffer, _encoding, callback) {
        if (request.credentialsChecked !== true) {
          if (!budget.take(chunk.length)) {
            callback(
              new HttpError(
                'SY_HTTP_UNAUTHENTICATED_BODIES_FULL',
                'the hub holds as many request bodies awaiting authentication as it allows; retry shortly',
                { headers: { 'retry-after': '1', connection: 'close' } },
              ),
            );
            return;
          }
          held += chunk.length;
        }
        callback(null, chunk);
      },
    });
    const timer = setTimeout(() => {
      meter.destroy(
        new HttpError(
          'SY_HTTP_REQUEST_TIMEOUT',
          `the request body did not arrive within ${options.bodyTimeoutMs} ms`,
          { headers: { connection: 'close' } },
        ),
      );
    }, options.bodyTimeoutMs);
    timer.unref();
    // Forwarded by hand, not piped: a failed meter must leave the socket open for the answer.
    const forward = (chunk: Buffer) => {
      if (!meter.write(chunk)) payload.pause();
    };
    const stop = () => {
      clearTimeout(timer);
      payload.off('data', forward);
    };
    meter.on('drain', () => payload.resume());
    meter.once('end', stop);
    meter.once('close', stop);
    // The parser's own listener reports errors; this one only keeps a late one from crashing the process.
    meter.on('error', () => {});
    payload.once('end', () => meter.end());
    payload.once('error', (error) => meter.destroy(error));
    reply.raw.once('close', () => {
      stop();
      budget.give(held);
      held = 0;
    });
    return meter;
  });
  return budget;
}
