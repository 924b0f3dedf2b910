import net from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { problemOf } from '../errors.ts';
import { installProblemHandling, sendProblem } from '../plugins/problem.ts';
import { RouteTable } from '../route-table.ts';
import { type ByteBudget, installRequestLimits, MAX_LINGERING_CONNECTIONS } from './request-limits.ts';

let app: FastifyInstance;
let budget: ByteBudget;
let base: string;

afterEach(async () => {
  await app?.close();
});

async function start(options: {
  bodyTimeoutMs: number;
  unauthenticatedBodyBytes: number;
  lingeringClose?: { totalMs: number; idleMs: number };
  /** More routes and hooks, added before the app listens. */
  more?: (app: FastifyInstance) => void;
}) {
  app = Fastify();
  installProblemHandling(app, new RouteTable());
  const { more: _more, ...limits } = options;
  budget = installRequestLimits(app, { lingeringClose: { totalMs: 2_000, idleMs: 1_000 }, ...limits });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  app.post('/open', async (request) => ({ bytes: (request.body as Buffer).length, held: budget.held }));
  app.post(
    '/checked',
    {
      onRequest: async (request) => {
        request.credentialsChecked = true;
      },
    },
    async (request) => ({ bytes: (request.body as Buffer).length, held: budget.held }),
  );
  options.more?.(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

const post = (path: string, bytes: number) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body: 'x'.repeat(bytes),
  });

describe('installRequestLimits', () => {
  it('bounds the body bytes held for requests whose credentials are not checked, and gives them back', async () => {
    await start({ bodyTimeoutMs: 5_000, unauthenticatedBodyBytes: 1000 });
    const small = await post('/open', 600);
    expect(await small.json()).toEqual({ bytes: 600, held: 600 });
    expect(budget.held).toBe(0);

    const big = await post('/open', 1500);
    expect(big.status).toBe(503);
    expect(big.headers.get('content-type')).toContain('application/problem+json');
    expect(big.headers.get('retry-after')).toBe('1');
    expect(big.headers.get('connection')).toBe('close');
    expect(((await big.json()) as { code: string }).code).toBe('SY_HTTP_UNAUTHENTICATED_BODIES_FULL');
    expect(budget.held).toBe(0);

    // A request whose credentials were checked before its body costs nothing.
    expect(await (await post('/checked', 1500)).json()).toEqual({ bytes: 1500, held: 0 });
  });

  it('answers 408 and closes the connection when the body does not arrive in time', async () => {
    await start({ bodyTimeoutMs: 300, unauthenticatedBodyBytes: 1000 });
    const port = Number(new URL(base).port);
    const answer = await new Promise<string>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve(text));
      socket.write(
        'POST /checked HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nab',
      );
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('SY_HTTP_REQUEST_TIMEOUT');
    expect(answer.toLowerCase()).toContain('connection: close');
  });

  it('drains a refused body without holding it, answers in full, and cuts off a client that sends on', async () => {
    await start({
      bodyTimeoutMs: 30_000,
      unauthenticatedBodyBytes: 1000,
      lingeringClose: { totalMs: 1_000, idleMs: 500 },
    });
    const port = Number(new URL(base).port);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const heldWhileSending: number[] = [];
    const outcome = await new Promise<{ text: string; error?: string; sent: number; ms: number }>(
      (resolve) => {
        const opened = Date.now();
        // Sends on after the answer and the hub's FIN, without end, past its announced length.
        const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        let text = '';
        let sent = 0;
        let error: string | undefined;
        socket.on('data', (c: Buffer) => {
          text += c.toString('latin1');
        });
        socket.on('error', (e: NodeJS.ErrnoException) => {
          error ??= e.code;
        });
        socket.on('close', () =>
          resolve({ text, ...(error ? { error } : {}), sent, ms: Date.now() - opened }),
        );
        socket.write(
          'POST /open HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 500000\r\n\r\n',
        );
        const pump = () => {
          while (!socket.destroyed && socket.writable) {
            sent += chunk.length;
            heldWhileSending.push(budget.held);
            if (!socket.write(chunk)) {
              socket.once('drain', pump);
              return;
            }
          }
        };
        pump();
      },
    );
    // The 503 of a full budget, whole (the reset came only at the cut-off, after it).
    expect(outcome.text).toMatch(/^HTTP\/1\.1 503 /);
    expect(outcome.text).toContain('SY_HTTP_UNAUTHENTICATED_BODIES_FULL');
    // It was drained (it sent more than its announced body) and cut off at the bound (1 s, generous slack).
    expect(outcome.sent).toBeGreaterThan(500_000);
    expect(outcome.ms).toBeLessThan(10_000);
    // The drained bytes were never held: after the first chunks the budget stays empty.
    expect(heldWhileSending.slice(-10)).toEqual(Array(10).fill(0));
    expect(budget.held).toBe(0);
  });
  it('lingers on at most MAX_LINGERING_CONNECTIONS refused connections at once; past them one closes at once', async () => {
    await start({
      bodyTimeoutMs: 30_000,
      unauthenticatedBodyBytes: 1000,
      lingeringClose: { totalMs: 20_000, idleMs: 20_000 },
    });
    const port = Number(new URL(base).port);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    // A client refused (503, its body past the budget) that keeps sending a little: a lingering
    // connection takes it and drops it; on a closed one it meets a reset and closes.
    const refused = () => {
      const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
      socket.on('error', () => {});
      const sending = setInterval(() => {
        if (!socket.destroyed) socket.write(chunk.subarray(0, 1024));
      }, 20);
      socket.on('close', () => clearInterval(sending));
      let text = '';
      let isClosed = false;
      const answered = new Promise<void>((resolve) =>
        socket.on('data', (c: Buffer) => {
          text += c.toString('latin1');
          if (text.includes('SY_HTTP_UNAUTHENTICATED_BODIES_FULL')) resolve();
        }),
      );
      const closed = new Promise<void>((resolve) =>
        socket.on('close', () => {
          isClosed = true;
          resolve();
        }),
      );
      socket.write(
        'POST /open HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 500000\r\n\r\n',
      );
      socket.write(chunk);
      return { socket, answered, closed, isClosed: () => isClosed };
    };
    const lingering = Array.from({ length: MAX_LINGERING_CONNECTIONS }, refused);
    try {
      await Promise.all(lingering.map((c) => c.answered));
      // One more: answered, then closed by the hub at once, while the others still linger.
      const past = refused();
      await past.answered;
      await past.closed;
      expect(lingering.filter((c) => c.isClosed())).toEqual([]);
      // Once one of them is gone, a refusal lingers again.
      lingering[0]!.socket.destroy();
      await lingering[0]!.closed;
      const again = refused();
      await again.answered;
      await Promise.race([again.closed, new Promise((r) => setTimeout(r, 300))]);
      expect(again.isClosed()).toBe(false);
      again.socket.destroy();
    } finally {
      for (const c of lingering) c.socket.destroy();
    }
  });

  it('a refusal still being written as the server starts closing reaches the client whole', async () => {
    let reached!: () => void;
    const inOnSend = new Promise<void>((resolve) => {
      reached = resolve;
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let closeStarted!: () => void;
    const closing = new Promise<void>((resolve) => {
      closeStarted = resolve;
    });
    await start({
      bodyTimeoutMs: 30_000,
      unauthenticatedBodyBytes: 1_000_000,
      // Bounds past the test's timeout: the close must not wait for them.
      lingeringClose: { totalMs: 60_000, idleMs: 60_000 },
      more: (app) => {
        // Runs after the problem handling's own preClose (registered first).
        app.addHook('preClose', async () => closeStarted());
        app.post(
          '/refused-slowly',
          {
            // Refused before its body is read, its answer held on its way (an onSend hook).
            onRequest: async (request, reply) => {
              reply.header('connection', 'close');
              return sendProblem(
                reply,
                problemOf('SY_HTTP_BAD_REQUEST', 'refused', request.url, { status: 400 }),
              );
            },
            onSend: async (_request, _reply, payload) => {
              reached();
              await gate;
              return payload;
            },
          },
          async () => 'never',
        );
      },
    });
    const socket = net.connect({ port: Number(new URL(base).port), host: '127.0.0.1', allowHalfOpen: true });
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
    });
    socket.on('error', () => {});
    // The hub's FIN (or a reset): all it sent has come.
    const closed = new Promise<void>((resolve) => {
      socket.on('end', () => resolve());
      socket.on('close', () => resolve());
    });
    socket.write(
      `POST /refused-slowly HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 500000\r\n\r\n${'a'.repeat(1024)}`,
    );
    await inOnSend;
    const closedApp = app.close();
    await closing;
    release();
    await closed;
    socket.destroy();
    await closedApp;
    // Before, the close destroyed the connection admitted to linger before its answer was written.
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toContain('SY_HTTP_BAD_REQUEST');
  });
});
