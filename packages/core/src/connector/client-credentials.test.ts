import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ConnectorError } from '../errors/connector-error.ts';
import {
  ACCESS_TOKEN_EXPIRY_MARGIN_MS,
  type ClientCredentialsOptions,
  clientCredentials,
  MAX_CACHED_ACCESS_TOKENS,
} from './client-credentials.ts';
import type { VendorHttp, VendorResponse } from './types.ts';
import { vendorRequestInit, vendorResponseBody } from './vendor-exchange.ts';

interface Config {
  apiBaseUrl: string;
  clientId?: string;
  clientSecret?: string;
}

const SECRET = 'cs-9f2c41d7e0b8a6';

/** Over real HTTP, sent and read as the hub's vendor client does (core's vendor-exchange rules). */
const http: VendorHttp = {
  async request(request) {
    const { method, headers, body } = vendorRequestInit(request);
    const res = await fetch(request.url, { method, headers, body, redirect: 'manual' });
    const answer: Record<string, string> = {};
    res.headers.forEach((value, name) => {
      answer[name] = value;
    });
    return {
      status: res.status,
      headers: answer,
      body: vendorResponseBody(await res.text(), res.headers.get('content-type')),
    };
  },
};

interface Seen {
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  form: Record<string, string>;
}

type Answer = { status: number; headers?: Record<string, string>; json?: unknown; text?: string };

const servers: Array<{ close(): void }> = [];
afterEach(() => {
  while (servers.length > 0) servers.pop()!.close();
});

/** A vendor: its token endpoint answers `tokenAnswers` in turn (then tokens t1, t2…); `/api` answers `apiAnswer`. */
async function vendor(
  tokenAnswers: Answer[] = [],
  apiAnswer: (auth: string | undefined) => Answer = () => ({ status: 200, json: { ok: true } }),
) {
  const seen: Seen[] = [];
  let issued = 0;
  const reply = (res: ServerResponse, a: Answer) => {
    const type = a.json !== undefined ? 'application/json' : 'text/html';
    res
      .writeHead(a.status, { 'content-type': type, ...a.headers })
      .end(a.json !== undefined ? JSON.stringify(a.json) : (a.text ?? ''));
  };
  const server = createServer(async (req: IncomingMessage, res) => {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const path = req.url ?? '';
    seen.push({
      path,
      authorization: req.headers.authorization,
      contentType: req.headers['content-type'],
      form: Object.fromEntries(new URLSearchParams(text)),
    });
    if (path === '/oauth/token') {
      const next = tokenAnswers.shift();
      if (next) return reply(res, next);
      issued++;
      return reply(res, {
        status: 200,
        json: { access_token: `t${issued}`, token_type: 'Bearer', expires_in: 3600 },
      });
    }
    reply(res, apiAnswer(req.headers.authorization));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const ctx = {
    instanceId: 'acme-1',
    config: { apiBaseUrl: url, clientId: 'acme-client', clientSecret: SECRET } as Config,
    http,
  };
  return { seen, ctx, tokenCalls: () => seen.filter((s) => s.path === '/oauth/token') };
}

const acme = (overrides: Partial<ClientCredentialsOptions<Config>> = {}) =>
  clientCredentials<Config>({
    vendor: 'Acme',
    tokenUrl: (config) => `${config.apiBaseUrl}/oauth/token`,
    credentials: (config) =>
      config.clientId && config.clientSecret
        ? { clientId: config.clientId, clientSecret: config.clientSecret }
        : undefined,
    authentication: 'basic',
    scope: 'integration',
    ...overrides,
  });

async function caught(promise: Promise<unknown>): Promise<ConnectorError> {
  try {
    await promise;
  } catch (error) {
    return error as ConnectorError;
  }
  throw new Error('expected a rejection');
}

describe('clientCredentials', () => {
  it('sends the client credentials as HTTP Basic or in the form body (RFC 6749 §2.3.1), with the grant and scope', async () => {
    const { ctx, tokenCalls } = await vendor();
    await acme().token(ctx);
    await acme({ authentication: 'body', scope: undefined }).token(ctx);
    const [basic, body] = tokenCalls();
    expect(basic).toEqual({
      path: '/oauth/token',
      authorization: `Basic ${Buffer.from(`acme-client:${SECRET}`).toString('base64')}`,
      contentType: 'application/x-www-form-urlencoded',
      form: { grant_type: 'client_credentials', scope: 'integration' },
    });
    expect(body).toEqual({
      path: '/oauth/token',
      authorization: undefined,
      contentType: 'application/x-www-form-urlencoded',
      form: { grant_type: 'client_credentials', client_id: 'acme-client', client_secret: SECRET },
    });
  });

  it('holds the token per instance and credentials, and asks again for another instance or new credentials', async () => {
    const { ctx, tokenCalls } = await vendor();
    const oauth = acme();
    expect(await oauth.token(ctx)).toBe('t1');
    expect(await oauth.token({ ...ctx })).toBe('t1');
    expect(await oauth.token({ ...ctx, instanceId: 'acme-2' })).toBe('t2');
    expect(await oauth.token({ ...ctx, config: { ...ctx.config, clientSecret: 'rotated' } })).toBe('t3');
    oauth.forget(ctx);
    expect(await oauth.token(ctx)).toBe('t4');
    expect(await oauth.token(ctx)).toBe('t4');
    expect(tokenCalls()).toHaveLength(4);
  });

  it('renews a token before it expires by its own clock', async () => {
    const life = ACCESS_TOKEN_EXPIRY_MARGIN_MS / 1000;
    const { ctx, tokenCalls } = await vendor([
      { status: 200, json: { access_token: 'short', expires_in: life } },
      { status: 200, json: { access_token: 'long', expires_in: 3600 } },
    ]);
    const oauth = acme();
    expect(await oauth.token(ctx)).toBe('short');
    expect(await oauth.token(ctx)).toBe('long');
    expect(await oauth.token(ctx)).toBe('long');
    expect(tokenCalls()).toHaveLength(2);
  });

  it('asks once for callers that need a token at the same moment, and again after a failed ask', async () => {
    const { ctx, tokenCalls } = await vendor([{ status: 503 }]);
    const oauth = acme();
    const failed = await Promise.allSettled([oauth.token(ctx), oauth.token(ctx), oauth.token(ctx)]);
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(tokenCalls()).toHaveLength(1);
    expect(await Promise.all([oauth.token(ctx), oauth.token(ctx), oauth.token({ ...ctx })])).toEqual([
      't1',
      't1',
      't1',
    ]);
    expect(tokenCalls()).toHaveLength(2);
  });

  it('reads expires_in given as a numeric string (as some identity providers send it)', async () => {
    const life = ACCESS_TOKEN_EXPIRY_MARGIN_MS / 1000;
    const { ctx, tokenCalls } = await vendor([
      { status: 200, json: { access_token: 'short', expires_in: String(life) } },
      { status: 200, json: { access_token: 'long', expires_in: '3599' } },
    ]);
    const oauth = acme();
    expect(await oauth.token(ctx)).toBe('short');
    expect(await oauth.token(ctx)).toBe('long');
    expect(await oauth.token(ctx)).toBe('long');
    expect(tokenCalls()).toHaveLength(2);
  });

  it('calls the API with the bearer token, renewing it once on a 401; a second 401 is permanent', async () => {
    let revoked = 't1';
    const { ctx, seen } = await vendor([], (auth) =>
      auth === `Bearer ${revoked}` || auth === 'Bearer t3'
        ? { status: 401, json: { error: 'invalid_token' } }
        : { status: 200, json: { ok: true } },
    );
    const oauth = acme();
    const res = await oauth.request(ctx, { url: `${ctx.config.apiBaseUrl}/api/items` });
    expect(res).toMatchObject({ status: 200, body: { ok: true } });
    expect(seen.map((s) => `${s.path} ${s.authorization ?? ''}`).filter((s) => s.startsWith('/api'))).toEqual(
      ['/api/items Bearer t1', '/api/items Bearer t2'],
    );
    revoked = 't2';
    const error = await caught(oauth.request(ctx, { url: `${ctx.config.apiBaseUrl}/api/items` }));
    expect(error).toMatchObject({
      kind: 'permanent',
      message: 'Acme API answered 401 with a fresh token: check the client credentials',
    });
  });

  it('renews a revoked token once for callers refused with it one after another, not once per caller', async () => {
    // B's call went out with t1 beside A's, and its 401 comes back only once A has renewed the token.
    let answerB: () => void = () => {};
    const bRefused = new Promise<void>((resolve) => {
      answerB = resolve;
    });
    const { ctx, seen, tokenCalls } = await vendor([], (auth) =>
      auth === 'Bearer t1'
        ? { status: 401, json: { error: 'invalid_token' } }
        : { status: 200, json: { ok: true } },
    );
    const oauth = acme();
    const slowHttp: typeof http = {
      async request(request) {
        const res = await http.request(request);
        if (request.url.endsWith('/api/b') && res.status === 401) await bRefused;
        return res;
      },
    };
    expect(await oauth.token(ctx)).toBe('t1');
    const b = oauth.request({ ...ctx, http: slowHttp }, { url: `${ctx.config.apiBaseUrl}/api/b` });
    const a = await oauth.request(ctx, { url: `${ctx.config.apiBaseUrl}/api/a` });
    expect(a.status).toBe(200);
    answerB();
    expect((await b).status).toBe(200);
    expect(tokenCalls()).toHaveLength(2);
    expect(
      seen
        .filter((s) => s.path.startsWith('/api'))
        .map((s) => `${s.path} ${s.authorization}`)
        .sort(),
    ).toEqual(['/api/a Bearer t1', '/api/a Bearer t2', '/api/b Bearer t1', '/api/b Bearer t2']);
    expect(await oauth.token(ctx)).toBe('t2');
  });

  it('gives a new token for a refused one, but the one another caller already renewed (token with refused)', async () => {
    const { ctx, tokenCalls } = await vendor();
    const oauth = acme();
    const first = await oauth.token(ctx);
    // Two writes sent with t1, both refused: the first renews, the second gets that same token.
    expect(await oauth.token(ctx, { refused: first })).toBe('t2');
    expect(await oauth.token(ctx, { refused: first })).toBe('t2');
    expect(tokenCalls()).toHaveLength(2);
    // The one held now refused in turn: a new one.
    expect(await oauth.token(ctx, { refused: 't2' })).toBe('t3');
  });

  it('takes 408, 429 and 5xx from the token endpoint as transient, with the wait asked for', async () => {
    const { ctx } = await vendor([
      { status: 503, headers: { 'retry-after': '12' }, json: { error: 'unavailable' } },
      { status: 429, headers: { 'x-reset-in': '7' }, json: {} },
    ]);
    expect(await caught(acme().token(ctx))).toMatchObject({
      kind: 'transient',
      retryAfterMs: 12_000,
      message: 'Acme token endpoint answered 503',
    });
    const own = acme({ retryAfterMs: (res) => Number(res.headers['x-reset-in']) * 1000 });
    expect(await caught(own.token(ctx))).toMatchObject({ kind: 'transient', retryAfterMs: 7000 });
  });

  it('takes a 2xx without a token (a maintenance page) as transient, and a 400/401 as refused credentials', async () => {
    const { ctx } = await vendor([
      { status: 200, text: '<html>Down for maintenance</html>' },
      { status: 400, json: { error: 'invalid_client' } },
      { status: 401, json: { error: 'invalid_client' } },
    ]);
    const oauth = acme();
    expect(await caught(oauth.token(ctx))).toMatchObject({
      kind: 'transient',
      message: "Acme's token endpoint answered 200 without an access token",
    });
    for (const status of [400, 401]) {
      expect(await caught(oauth.token(ctx))).toMatchObject({
        kind: 'permanent',
        message: `Acme refused the client credentials (token endpoint answered ${status})`,
        details: { status },
      });
    }
  });

  it('refuses without a call when the instance has no credentials', async () => {
    const { ctx, seen } = await vendor();
    const none = { ...ctx, config: { apiBaseUrl: ctx.config.apiBaseUrl } };
    expect(await caught(acme().token(none))).toMatchObject({
      kind: 'permanent',
      message: 'Acme API calls need client credentials',
    });
    expect(await caught(acme({ missingCredentials: 'set settings.clientId' }).token(none))).toMatchObject({
      message: 'set settings.clientId',
    });
    expect(seen).toEqual([]);
  });

  it('never puts the secret or a token in an error, whatever the vendor echoes', async () => {
    const echo = { error: 'invalid_client', client_secret: SECRET, access_token: 'leaked' };
    const { ctx } = await vendor([
      { status: 401, json: echo },
      { status: 200, json: { ...echo, access_token: 42 } },
      { status: 503, json: echo },
    ]);
    const oauth = acme({ authentication: 'body' });
    for (let i = 0; i < 3; i++) {
      const error = await caught(oauth.token(ctx));
      expect(error).toBeInstanceOf(ConnectorError);
      const shown = JSON.stringify({
        message: error.message,
        details: (error as { details?: unknown }).details,
        error,
      });
      expect(shown).not.toContain(SECRET);
      expect(shown).not.toContain('leaked');
    }
  });

  it('holds at most MAX_CACHED_ACCESS_TOKENS tokens, the least recently used going first', async () => {
    let issued = 0;
    const local: VendorHttp = {
      async request(): Promise<VendorResponse> {
        return { status: 200, headers: {}, body: { access_token: `t${++issued}`, expires_in: 3600 } };
      },
    };
    const oauth = acme();
    const token = (instanceId: string) =>
      oauth.token({
        instanceId,
        http: local,
        config: { apiBaseUrl: 'https://acme.test', clientId: 'c', clientSecret: 's' },
      });
    await token('first');
    await token('second');
    for (let i = 0; i < MAX_CACHED_ACCESS_TOKENS - 2; i++) await token(`filler-${i}`);
    await token('first');
    expect(issued).toBe(MAX_CACHED_ACCESS_TOKENS);
    await token('one-too-many');
    await token('first');
    expect(issued).toBe(MAX_CACHED_ACCESS_TOKENS + 1);
    await token('second');
    expect(issued).toBe(MAX_CACHED_ACCESS_TOKENS + 2);
  });
});
