/**
 * `PUT /v1/instances/{id}` keeps a stored secret sent back as `[redacted]`, but not when the same
 * request changes where the secret is sent (a URL-valued setting, found from the connector's
 * settings schema, or the connector itself): an admin session could otherwise point a vendor
 * client secret at its own host without ever knowing it.
 */
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findConnector } from '../connectors.ts';
import { call, listen, makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { lockWaiters, until } from '../storage/locks.test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

const CW_KEY = 'cw-shared-key-0123456789';
const CW_API_KEY = 'cw-rest-api-key-s3cr3t';
const BB_TOKEN = 'bb-basic-token-0123456789';
const BB_PASSWORD = 'bb-admin-password-s3cr3t';
const DP_SECRET = 'dp-client-secret-s3cr3t';

beforeAll(async () => {
  hub = await makeHub(database.url(), {
    connectors: ['clockwisemd', 'bookingbug', 'docplanner', 'instinctive-notes', 'square'].map(
      (name) => findConnector(name)!,
    ),
  });
  server = await listen(hub);
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

const put = (id: string, body: unknown) => call(server.base, 'PUT', `/v1/instances/${id}`, { body });
/** The settings as stored, secrets in the clear (what the connector would send). */
const stored = async (id: string) => (await hub.host.loadInstance(id, true))?.config;

async function clockwise(id: string) {
  const created = await call(server.base, 'POST', '/v1/instances', {
    body: {
      id,
      connector: 'clockwisemd',
      settings: { auth: { mode: 'header', key: CW_KEY }, apiKey: CW_API_KEY },
    },
  });
  expect(created.status).toBe(201);
  // What a client GETs and may PUT back: secrets redacted, the default API base filled in.
  const settings = (await call(server.base, 'GET', `/v1/instances/${id}`)).json.settings;
  expect(settings).toMatchObject({
    auth: { key: '[redacted]' },
    apiKey: '[redacted]',
    apiBaseUrl: 'https://api.clockwisemd.com/v1',
  });
  return settings as Record<string, unknown>;
}

describe('replacing an instance while keeping its secrets as [redacted]', () => {
  it('is refused (400 SY_HTTP_SECRETS_REQUIRED) when a URL the secrets go to changes, and nothing is stored', async () => {
    const settings = await clockwise('cw-redirect');
    const answer = await put('cw-redirect', {
      connector: 'clockwisemd',
      settings: { ...settings, apiBaseUrl: 'https://collector.attacker.example/v1' },
    });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('content-type')).toContain('application/problem+json');
    expect(answer.json).toMatchObject({
      status: 400,
      code: 'SY_HTTP_SECRETS_REQUIRED',
      details: {
        instance: 'cw-redirect',
        settings: ['/settings/apiBaseUrl'],
        secrets: ['/settings/apiKey', '/settings/auth/key'],
      },
    });
    expect(answer.text).not.toContain(CW_API_KEY);
    expect(await stored('cw-redirect')).toMatchObject({
      apiBaseUrl: 'https://api.clockwisemd.com/v1',
      apiKey: CW_API_KEY,
    });
  });

  it('is refused for a nested URL too (BookingBug adminApi.baseUrl, where the admin password goes)', async () => {
    const created = await call(server.base, 'POST', '/v1/instances', {
      body: {
        id: 'bb-redirect',
        connector: 'bookingbug',
        settings: {
          basicToken: BB_TOKEN,
          adminApi: {
            baseUrl: 'https://uk.bookingbug.com',
            appId: 'app',
            email: 'a@b.example',
            password: BB_PASSWORD,
          },
        },
      },
    });
    expect(created.status).toBe(201);
    const settings = (await call(server.base, 'GET', '/v1/instances/bb-redirect')).json.settings;
    expect(settings.adminApi.password).toBe('[redacted]');
    const answer = await put('bb-redirect', {
      connector: 'bookingbug',
      settings: { ...settings, adminApi: { ...settings.adminApi, baseUrl: 'https://attacker.example' } },
    });
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe('SY_HTTP_SECRETS_REQUIRED');
    expect(answer.json.details.settings).toEqual(['/settings/adminApi/baseUrl']);
    expect((await stored('bb-redirect'))?.adminApi).toMatchObject({
      baseUrl: 'https://uk.bookingbug.com',
      password: BB_PASSWORD,
    });
  });

  it('is refused for a host name the secret is sent to (Docplanner domain: calls go to https://www.{domain})', async () => {
    const created = await call(server.base, 'POST', '/v1/instances', {
      body: {
        id: 'dp-redirect',
        connector: 'docplanner',
        settings: { domain: 'znanylekarz.pl', clientId: '123_abc', clientSecret: DP_SECRET },
      },
    });
    expect(created.status).toBe(201);
    const settings = (await call(server.base, 'GET', '/v1/instances/dp-redirect')).json.settings;
    expect(settings.clientSecret).toBe('[redacted]');
    const answer = await put('dp-redirect', {
      connector: 'docplanner',
      settings: { ...settings, domain: 'attacker.example' },
    });
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe('SY_HTTP_SECRETS_REQUIRED');
    expect(answer.json.details.settings).toEqual(['/settings/domain']);
    expect(answer.text).not.toContain(DP_SECRET);
    expect(await stored('dp-redirect')).toMatchObject({ domain: 'znanylekarz.pl', clientSecret: DP_SECRET });
  });

  it('is refused when the connector changes', async () => {
    const settings = await clockwise('cw-other-connector');
    const answer = await put('cw-other-connector', { connector: 'bookingbug', settings });
    expect(answer.status).toBe(400);
    expect(answer.json.code).toBe('SY_HTTP_SECRETS_REQUIRED');
    expect((await call(server.base, 'GET', '/v1/instances/cw-other-connector')).json.connector).toBe(
      'clockwisemd',
    );
  });

  it('is accepted with the secrets sent again, and when no URL changes (the default left out counts as the same)', async () => {
    const settings = await clockwise('cw-ok');
    const { apiBaseUrl: _default, ...withoutUrl } = settings;
    const unchanged = await put('cw-ok', {
      connector: 'clockwisemd',
      settings: { ...withoutUrl, enrich: false },
    });
    expect(unchanged.status).toBe(200);
    expect(await stored('cw-ok')).toMatchObject({ enrich: false, apiKey: CW_API_KEY });

    const moved = await put('cw-ok', {
      connector: 'clockwisemd',
      settings: {
        auth: { mode: 'header', key: CW_KEY },
        apiKey: 'cw-rest-api-key-for-the-new-host',
        apiBaseUrl: 'https://eu.clockwisemd.example/v1',
      },
    });
    expect(moved.status).toBe(200);
    expect(await stored('cw-ok')).toMatchObject({
      apiBaseUrl: 'https://eu.clockwisemd.example/v1',
      apiKey: 'cw-rest-api-key-for-the-new-host',
    });
  });
});

describe('a hook key in the URL path that the hub could never match', () => {
  const RULE =
    'is a URL path segment in auth.mode path: it must not contain /, ?, #, % or whitespace (a push could never match it); send such a value in a header instead (auth.mode header)';
  // Clockwise.MD's own page shows a per-vendor key over two path segments.
  const SLASHED = 'CF3uQP8cSFIQB8gB/9285030fceca';

  it('is refused when saved (422 naming the field, not the value), and nothing is stored', async () => {
    const created = await call(server.base, 'POST', '/v1/instances', {
      body: { id: 'cw-slash', connector: 'clockwisemd', settings: { auth: { mode: 'path', key: SLASHED } } },
    });
    expect(created.status).toBe(422);
    expect(created.headers.get('content-type')).toContain('application/problem+json');
    expect(created.json).toMatchObject({
      code: 'SY_PIPELINE_INVALID_INPUT',
      details: { errors: [{ path: '/settings/auth/key', message: RULE }] },
    });
    expect(created.text).not.toContain('9285030fceca');
    expect((await call(server.base, 'GET', '/v1/instances/cw-slash')).status).toBe(404);

    for (const secret of [
      'in-secret-0123456789?x',
      'in-secret-0123456789#x',
      'in-secret-01234567%41',
      'in secret 0123456789',
    ]) {
      const answer = await put('notes-path', {
        connector: 'instinctive-notes',
        settings: { auth: { mode: 'path', secret } },
      });
      expect(answer.status, secret).toBe(422);
      expect(answer.json.details.errors, secret).toEqual([{ path: '/settings/auth/secret', message: RULE }]);
    }
    expect((await call(server.base, 'GET', '/v1/instances/notes-path')).status).toBe(404);
  });

  it('is taken in header mode, where any string works, and a push carrying it in the header is accepted', async () => {
    const created = await put('cw-header-slash', {
      connector: 'clockwisemd',
      settings: { auth: { mode: 'header', key: SLASHED } },
    });
    expect(created.status, JSON.stringify(created.json)).toBe(200);
    const pushed = await call(server.base, 'POST', '/hooks/cw-header-slash', {
      token: null,
      headers: { authtoken: SLASHED },
      body: { appointment_id: 7, event_type: 'checkin' },
    });
    expect(pushed.status, pushed.text).toBeLessThan(300);
    // A path-safe key in path mode is taken too.
    const path = await put('notes-path-ok', {
      connector: 'instinctive-notes',
      settings: { auth: { mode: 'path', secret: 'in-secret_0123456789.~-' } },
    });
    expect(path.status, JSON.stringify(path.json)).toBe(200);
  });
});

it("takes back a GET's pull block with the connector's own interval (intervalMs null)", async () => {
  // An instance created without `pull.intervalMs` answers `pull: { intervalMs: null }`; PUT back as
  // docs/api.md says (GET → edit → PUT), that null was coerced to 0 and refused "must be >= 100".
  const created = await put('dp-pull', {
    connector: 'docplanner',
    mode: 'pull',
    settings: { domain: 'znanylekarz.pl', clientId: 'dp-client', clientSecret: DP_SECRET },
  });
  expect(created.status).toBe(200);
  const { connector, mode, settings, pull } = (await call(server.base, 'GET', '/v1/instances/dp-pull')).json;
  expect(pull).toEqual({ intervalMs: null });
  const answer = await put('dp-pull', { connector, mode, settings, pull });
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  expect(answer.json.pull).toEqual({ intervalMs: null });
  expect((await stored('dp-pull'))?.clientSecret).toBe(DP_SECRET);
});

it('keeps the secret a PUT committed while a [redacted] PUT of the same instance waited on its row', async () => {
  // The `[redacted]` PUT read the stored secret unlocked and wrote it back later: a PUT setting a new
  // secret that committed in between was undone, the old secret written over the new one.
  const settings = (secret: string) => ({
    domain: 'znanylekarz.pl',
    clientId: 'dp-race',
    clientSecret: secret,
  });
  const NEW_SECRET = 'dp-client-secret-rotated';
  expect((await put('dp-race', { connector: 'docplanner', settings: settings(NEW_SECRET) })).status).toBe(
    200,
  );
  // Another session's PUT of the new secret: the row it wrote (sealed as the hub seals it), not yet
  // committed while the `[redacted]` PUT comes in.
  const other = new pg.Client({ connectionString: database.url() });
  await other.connect();
  try {
    const select = 'select settings_sealed from switchyard.connector_instances where id = $1';
    const sealedNew = (await other.query(select, ['dp-race'])).rows[0].settings_sealed;
    expect((await put('dp-race', { connector: 'docplanner', settings: settings(DP_SECRET) })).status).toBe(
      200,
    );
    await other.query('begin');
    await other.query('update switchyard.connector_instances set settings_sealed = $1 where id = $2', [
      sealedNew,
      'dp-race',
    ]);
    const kept = put('dp-race', { connector: 'docplanner', settings: settings('[redacted]') });
    await until(async () => (await lockWaiters(hub.host.db)) === 1);
    await other.query('commit');
    expect((await kept).status).toBe(200);
  } finally {
    await other.end();
  }
  expect((await stored('dp-race'))?.clientSecret).toBe(NEW_SECRET);
});

describe('an instance whose vendor signs the hook URL (Square)', () => {
  const SQUARE_KEY = 'sq-signature-key-0123456789';
  const square = { connector: 'square', settings: { signatureKey: SQUARE_KEY } };
  /** The config file's words for the same instance (config/load.ts). */
  const unverifiable = (id: string) =>
    `connector "square" is verified against the hook URL its vendor signs, server.publicUrl + /hooks/${id}: set server.publicUrl (the URL the vendor reaches the hub at); without it every push is refused 401`;

  it("is refused (422, the config file's words) on a hub without server.publicUrl, and nothing is stored", async () => {
    const created = await call(server.base, 'POST', '/v1/instances', { body: { id: 'sq-nourl', ...square } });
    expect(created.status).toBe(422);
    expect(created.headers.get('content-type')).toContain('application/problem+json');
    expect(created.json).toMatchObject({
      status: 422,
      code: 'SY_PIPELINE_INVALID_INPUT',
      detail: unverifiable('sq-nourl'),
      details: { instance: 'sq-nourl', connector: 'square' },
    });
    expect(created.text).not.toContain(SQUARE_KEY);
    const replaced = await put('sq-nourl', { ...square, mode: 'push' });
    expect(replaced.status).toBe(422);
    expect(replaced.json).toMatchObject({
      code: 'SY_PIPELINE_INVALID_INPUT',
      detail: unverifiable('sq-nourl'),
    });
    expect((await call(server.base, 'GET', '/v1/instances/sq-nourl')).status).toBe(404);
  });

  it('is created on a hub with server.publicUrl', async () => {
    const proxied = await listen(hub, { publicUrl: 'https://hub.example.com' });
    try {
      const created = await call(proxied.base, 'POST', '/v1/instances', {
        body: { id: 'sq-url', ...square },
      });
      expect(created.status).toBe(201);
      expect((await call(proxied.base, 'PUT', '/v1/instances/sq-url', { body: square })).status).toBe(200);
    } finally {
      await proxied.close();
    }
  });
});
