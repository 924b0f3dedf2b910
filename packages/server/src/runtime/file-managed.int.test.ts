/**
 * The rule for objects declared in the config file, across a restart (docs/configuration.md,
 * "Managed by the file"): what the file declares is refused through the API (409
 * SY_HTTP_FILE_MANAGED), because the next start would silently undo it; what the file does not
 * declare (enabled/disabled, a generated signing secret) is the hub's and survives the restart.
 * An entry the file stops declaring is disabled, not deleted, and comes back as it was when the
 * file declares it again (a process restarted with an older file must not destroy the newer one's).
 * A restart is what `start` does: a new hub on the same database, then the file applied again.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { verifySignature } from '../delivery/sign.ts';
import { call, eventually, hookConnector, listen, makeHub, silent } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import { applyFileConfig } from './apply.ts';

const FILE_SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

const database = useTestDatabase();
let subscriber: RecordingSubscriber;
let config: ResolvedConfig;
let hub: Hub;
let app: { base: string; close(): Promise<void> };

/** Starts a hub on the test database, applies the file and listens: one process start. */
async function start(): Promise<void> {
  hub = await makeHub(database.url());
  await hub.start();
  await applyFileConfig(hub, config, silent);
  app = await listen(hub);
}

async function restart(): Promise<void> {
  await app.close();
  await hub.stop();
  await start();
}

const admin = (method: string, path: string, body?: unknown) =>
  call(app.base, method, path, body === undefined ? {} : { body });

/** The test's file: its instance and two subscriptions, and the entries given besides them. */
function fileConfig(more: { instances?: string[]; subscriptions?: string[] } = {}): ResolvedConfig {
  const yaml = [
    'version: 1',
    'instances:',
    '  - id: shop',
    '    connector: hooktest',
    '    settings: { apiKey: file-key-0123456789 }',
    ...(more.instances ?? []),
    'subscriptions:',
    '  - id: with-secret',
    '    kind: webhook',
    `    url: ${subscriber.url}with-secret`,
    '    allowPrivateAddresses: true',
    `    secrets: ["${FILE_SECRET}"]`,
    '  - id: generated',
    '    kind: webhook',
    `    url: ${subscriber.url}generated`,
    '    allowPrivateAddresses: true',
    ...(more.subscriptions ?? []),
    '',
  ].join('\n');
  const parsed = parseConfig(yaml, {
    file: '/tmp/switchyard.yaml',
    connectors: [hookConnector as never],
    env: {},
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  return parsed.config;
}

/** A logger keeping what it writes, as the JSON objects pino writes. */
function recordingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A push of the test connector to an instance, as the hooks route hands it to the hub. */
function push(apiKey: string, body: Record<string, unknown>) {
  return {
    route: 'default',
    params: {},
    query: {},
    method: 'POST',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    rawBody: Buffer.from(JSON.stringify(body)),
    sourceIp: '127.0.0.1',
    receivedAt: new Date(),
  };
}

beforeAll(async () => {
  subscriber = await startRecordingSubscriber();
  config = fileConfig();
  await start();
}, 60_000);

afterAll(async () => {
  await app?.close();
  await hub?.stop();
  await subscriber?.close();
});

describe('objects declared in the config file', () => {
  it('refuses what the file declares and keeps what it does not, across a restart', async () => {
    // Declared in the file: refused, with a problem document saying where to change it.
    const rotate = await admin('POST', '/v1/subscriptions/with-secret/rotate-secret', {});
    expect(rotate.status).toBe(409);
    expect(rotate.headers.get('content-type')).toContain('application/problem+json');
    expect(rotate.json).toMatchObject({
      code: 'SY_HTTP_FILE_MANAGED',
      details: { subscription: 'with-secret' },
    });
    expect(rotate.json.detail).toContain('configuration file');
    expect((await admin('PATCH', '/v1/subscriptions/with-secret', { timeoutMs: 5000 })).status).toBe(409);
    expect((await admin('DELETE', '/v1/subscriptions/with-secret')).status).toBe(409);
    expect(
      (
        await admin('PUT', '/v1/instances/shop', {
          connector: 'hooktest',
          settings: { apiKey: 'x'.repeat(20) },
        })
      ).status,
    ).toBe(409);
    const deleted = await admin('DELETE', '/v1/instances/shop');
    expect(deleted.status).toBe(409);
    // An app not given the file's path (buildApp's configFile) does not name it.
    expect(deleted.json.detail).toBe('instance "shop" is declared in the configuration file');
    const shown = await admin('GET', '/v1/subscriptions/with-secret');
    expect(shown.json.secrets).toEqual([expect.objectContaining({ fromFile: true })]);

    // Not declared in the file: the hub's. Rotate the generated secret, disable the other one.
    const rotated = await admin('POST', '/v1/subscriptions/generated/rotate-secret', { overlapMs: 0 });
    expect(rotated.status).toBe(200);
    const newSecret = rotated.json.secret as string;
    const disabled = await admin('POST', '/v1/subscriptions/with-secret/disable', { reason: 'maintenance' });
    expect(disabled.status).toBe(200);

    await restart();

    const generated = (await admin('GET', '/v1/subscriptions/generated')).json;
    expect(generated.secrets[0]).toEqual(rotated.json.subscription.secrets[0]);
    expect(generated.secrets[0].fromFile).toBe(false);
    const withSecret = (await admin('GET', '/v1/subscriptions/with-secret')).json;
    expect(withSecret).toMatchObject({ disabledReason: 'maintenance', secrets: [{ fromFile: true }] });
    expect(withSecret.disabledAt).not.toBeNull();
    // Still refused after the restart.
    expect((await admin('POST', '/v1/subscriptions/with-secret/rotate-secret', {})).status).toBe(409);

    // The subscriber that switched to the rotated secret can verify what the hub sends.
    const test = await admin('POST', '/v1/subscriptions/generated/test', {});
    expect(test.json).toMatchObject({ ok: true });
    const got = await subscriber.waitFor((r) => r.path === '/generated');
    expect(verifySignature({ headers: got.headers, body: got.rawBody, secrets: [newSecret] }).ok).toBe(true);

    // Enabling is the hub's too, and sticks.
    expect((await admin('POST', '/v1/subscriptions/with-secret/enable', {})).status).toBe(200);
    await restart();
    expect((await admin('GET', '/v1/subscriptions/with-secret')).json.disabledAt).toBeNull();
  }, 60_000);

  it('the file applied again as it is writes nothing: dates and secrets stay, and the start says unchanged', async () => {
    const before = (await admin('GET', '/v1/subscriptions/with-secret')).json;
    const generatedBefore = (await admin('GET', '/v1/subscriptions/generated')).json;
    const again = await applyFileConfig(hub, config, silent);
    expect(again.subscriptions).toMatchObject({
      created: [],
      updated: [],
      unchanged: ['with-secret', 'generated'],
    });
    const after = (await admin('GET', '/v1/subscriptions/with-secret')).json;
    expect(after.updatedAt).toBe(before.updatedAt);
    expect(after.secrets).toEqual(before.secrets);
    expect((await admin('GET', '/v1/subscriptions/generated')).json).toMatchObject({
      updatedAt: generatedBefore.updatedAt,
      secrets: generatedBefore.secrets,
    });

    // A field changed in the file is written; the secret the file still declares keeps its date.
    const changed = fileConfig();
    const declared = changed.subscriptions.find((x) => x.id === 'with-secret');
    if (!declared) throw new Error('with-secret is in the file');
    Object.assign(declared, { timeoutMs: 4321 });
    const applied = await applyFileConfig(hub, changed, silent);
    expect(applied.subscriptions).toMatchObject({ updated: ['with-secret'], unchanged: ['generated'] });
    const written = (await admin('GET', '/v1/subscriptions/with-secret')).json;
    expect(written.timeoutMs).toBe(4321);
    expect(written.updatedAt).not.toBe(before.updatedAt);
    expect(written.secrets).toEqual(before.secrets);
    await applyFileConfig(hub, config, silent);
  });

  it('a subscription the file stops declaring is disabled, not deleted: declared again, it keeps its secret and its waiting delivery', async () => {
    // A subscriber that is down, and a retry an hour away: the delivery waits, pending.
    subscriber.setHandler((r) => (r.path === '/held' ? 503 : undefined));
    const withHeld = fileConfig({
      subscriptions: [
        '  - id: held',
        '    kind: webhook',
        `    url: ${subscriber.url}held`,
        '    allowPrivateAddresses: true',
        '    retry: { schedule: [0s, 1h] }',
      ],
    });
    expect((await applyFileConfig(hub, withHeld, silent)).subscriptions.created).toEqual(['held']);
    const hint = (await hub.subscriptions.get('held')).secrets[0]!.secretHint;
    expect(
      (await hub.ingest('shop', push('file-key-0123456789', { id: 'held-1', type: 'created' }))).status,
    ).toBe(202);
    const waiting = await eventually(async () => {
      const [d] = (await hub.deliveries.list({ subscriptionId: 'held' })).items;
      return d?.status === 'pending' && d.attempts === 1 ? d : undefined;
    });

    // A process started with the file as it was before: held is not in it.
    const log = recordingLogger();
    const dropped = await applyFileConfig(hub, config, log.logger);
    expect(dropped.subscriptions.disabled).toEqual(['held']);
    const disabled = await hub.subscriptions.get('held');
    expect(disabled).toMatchObject({
      managedBy: 'file',
      disabledReason: 'no longer declared in the configuration file',
      secrets: [{ secretHint: hint }],
    });
    expect(disabled.disabledAt).not.toBeNull();
    expect(log.lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        subscription: 'held',
        msg: expect.stringContaining('delete it for good with DELETE /v1/subscriptions/held'),
      }),
    );
    expect(await hub.deliveries.get(waiting.id)).toMatchObject({ status: 'pending', attempts: 1 });
    // Nothing new is fanned out to it meanwhile (generated, which takes every event, gets this one).
    const before = (await hub.deliveries.list({ subscriptionId: 'generated' })).items.length;
    expect(
      (await hub.ingest('shop', push('file-key-0123456789', { id: 'held-2', type: 'created' }))).status,
    ).toBe(202);
    await eventually(
      async () => (await hub.deliveries.list({ subscriptionId: 'generated' })).items.length > before,
    );
    expect((await hub.deliveries.list({ subscriptionId: 'held' })).items.map((d) => d.id)).toEqual([
      waiting.id,
    ]);
    // Still the file's: a change through the API is refused.
    expect((await admin('PATCH', '/v1/subscriptions/held', { timeoutMs: 5000 })).status).toBe(409);

    // Declared again (the subscriber is back): enabled, same secret, and the delivery that waited goes out.
    subscriber.setHandler(undefined);
    const back = await applyFileConfig(hub, withHeld, silent);
    expect(back.subscriptions.reenabled).toEqual(['held']);
    const enabled = await hub.subscriptions.get('held');
    expect(enabled.disabledAt).toBeNull();
    expect(enabled.secrets.map((x) => x.secretHint)).toEqual([hint]);
    // The same event (webhook-id), sent once the subscription is back (waitFor fails after 10 s).
    await subscriber.waitFor(
      (r) => r.path === '/held' && r.webhookId === waiting.eventId && r.response?.status === 200,
    );
    await eventually(async () => (await hub.deliveries.get(waiting.id)).status === 'succeeded');

    // Dropped again, it can be deleted for good through the admin API; declared, it cannot.
    expect((await admin('DELETE', '/v1/subscriptions/held')).status).toBe(409);
    await applyFileConfig(hub, config, silent);
    expect((await admin('DELETE', '/v1/subscriptions/held')).status).toBe(204);
    expect((await admin('GET', '/v1/subscriptions/held')).status).toBe(404);
  }, 60_000);

  it('a pull subscription the file gives no secrets gets one generated, and its feed takes it', async () => {
    // Only the HTTP create route used to generate a pull secret: one from the file had none, so
    // its feed answered 401 to every reader (docs/configuration.md: "Absent: the hub generates one").
    const withPull = fileConfig({
      subscriptions: ['  - id: file-feed', '    kind: pull', '    events: ["appointment.*"]'],
    });
    const log = recordingLogger();
    expect((await applyFileConfig(hub, withPull, log.logger)).subscriptions.created).toEqual(['file-feed']);
    const created = await hub.subscriptions.get('file-feed');
    expect(created.secrets).toEqual([expect.objectContaining({ fromFile: false })]);
    expect(log.lines).toContainEqual(
      expect.objectContaining({
        subscription: 'file-feed',
        msg: expect.stringContaining('generated a signing secret'),
      }),
    );
    // The generated secret is never shown; the operator learns one by rotating (the file lists none).
    const rotated = await admin('POST', '/v1/subscriptions/file-feed/rotate-secret', { overlapMs: 0 });
    expect(rotated.status).toBe(200);
    const secret = rotated.json.secret as string;
    const feed = await call(app.base, 'GET', '/v1/subscriptions/file-feed/events', { token: secret });
    expect(feed.status).toBe(200);
    expect(feed.json).toMatchObject({ events: expect.any(Array), nextCursor: expect.any(String) });
    const ack = await call(app.base, 'POST', '/v1/subscriptions/file-feed/ack', {
      token: secret,
      body: { cursor: feed.json.nextCursor },
    });
    expect(ack.status).toBe(200);
    await applyFileConfig(hub, config, silent);
    expect((await admin('DELETE', '/v1/subscriptions/file-feed')).status).toBe(204);
  }, 60_000);

  it('an instance the file stops declaring is disabled, not deleted: pushes are refused, what it acknowledged is normalized, declared again it takes pushes', async () => {
    // No workers for now: the pushed message waits in the queue, acknowledged and not normalized.
    await app.close();
    await hub.stop();
    hub = await makeHub(database.url());
    const withQueued = fileConfig({
      instances: [
        '  - id: queued',
        '    connector: hooktest',
        '    settings: { apiKey: queued-key-0123456789 }',
      ],
    });
    await applyFileConfig(hub, withQueued, silent);
    const accepted = await hub.ingest(
      'queued',
      push('queued-key-0123456789', { id: 'q-1', type: 'created' }),
    );
    if (!accepted.ok) throw new Error(JSON.stringify(accepted));
    const [messageId] = accepted.stored;
    expect((await hub.inbound.get(messageId!)).status).toBe('received');

    const log = recordingLogger();
    const dropped = await applyFileConfig(hub, config, log.logger);
    expect(dropped.instances.disabled).toEqual(['queued']);
    const disabled = await hub.instances.get('queued');
    expect(disabled).toMatchObject({
      managedBy: 'file',
      disabledReason: 'no longer declared in the configuration file',
    });
    expect(disabled.disabledAt).not.toBeNull();
    expect(log.lines).toContainEqual(
      expect.objectContaining({
        level: 40,
        instance: 'queued',
        msg: expect.stringContaining('delete it for good with DELETE /v1/instances/queued'),
      }),
    );
    const refused = await hub.ingest('queued', push('queued-key-0123456789', { id: 'q-2', type: 'created' }));
    expect(refused).toMatchObject({ ok: false, status: 404, problem: { code: 'SY_PIPELINE_NOT_FOUND' } });
    await expect(hub.instances.pullNow('queued')).rejects.toMatchObject({ code: 'SY_PIPELINE_CONFLICT' });

    // The workers start while it is disabled: what it acknowledged is normalized, not failed.
    await hub.start();
    app = await listen(hub);
    const normalized = await eventually(async () => {
      const status = (await hub.inbound.get(messageId!)).status;
      return status === 'received' ? undefined : status;
    });
    expect(normalized).toBe('normalized');

    // Declared again: enabled, and pushes are taken again.
    const back = await applyFileConfig(hub, withQueued, silent);
    expect(back.instances.reenabled).toEqual(['queued']);
    expect((await hub.instances.get('queued')).disabledAt).toBeNull();
    expect(
      (await hub.ingest('queued', push('queued-key-0123456789', { id: 'q-3', type: 'created' }))).status,
    ).toBe(202);

    // Dropped again, it can be deleted for good through the admin API.
    await applyFileConfig(hub, config, silent);
    expect((await admin('DELETE', '/v1/instances/queued')).status).toBe(204);
  }, 60_000);

  it('an instance a subscription names as a source is not deleted (409 naming it), once the file drops it and the process restarts; the subscription is still edited as a whole, and the delete goes through once nothing names it', async () => {
    const withFront = fileConfig({
      instances: [
        '  - id: front',
        '    connector: hooktest',
        '    settings: { apiKey: front-key-0123456789 }',
      ],
    });
    config = withFront;
    await restart();
    const made = await admin('POST', '/v1/subscriptions', {
      id: 'names-front',
      url: `${subscriber.url}names-front`,
      allowPrivateAddresses: true,
      sources: ['front', 'shop'],
    });
    expect(made.status).toBe(201);
    const approver = await admin('POST', '/v1/subscriptions', {
      id: 'approves-front',
      url: `${subscriber.url}approves-front`,
      allowPrivateAddresses: true,
      approver: true,
      approverFilters: { sources: ['front'] },
    });
    expect(approver.status).toBe(201);

    // The file stops declaring it: the process starts (the instance is kept, disabled).
    config = fileConfig();
    await restart();
    expect((await admin('GET', '/v1/instances/front')).json.disabledAt).not.toBeNull();

    const refused = await admin('DELETE', '/v1/instances/front');
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.json).toMatchObject({
      code: 'SY_PIPELINE_CONFLICT',
      details: { instance: 'front', subscriptions: ['approves-front', 'names-front'] },
    });
    expect(refused.json.detail).toContain('"names-front"');
    expect((await admin('GET', '/v1/instances/front')).status).toBe(200);

    // The dashboard's filter form sends both lists back as they are: still accepted.
    const edited = await admin('PATCH', '/v1/subscriptions/names-front', {
      eventTypes: ['appointment.*'],
      sources: ['front', 'shop'],
    });
    expect(edited.status).toBe(200);

    await restart();
    expect((await admin('PATCH', '/v1/subscriptions/names-front', { sources: ['shop'] })).status).toBe(200);
    expect((await admin('DELETE', '/v1/subscriptions/approves-front')).status).toBe(204);
    expect((await admin('DELETE', '/v1/instances/front')).status).toBe(204);
    expect((await admin('DELETE', '/v1/subscriptions/names-front')).status).toBe(204);
  }, 60_000);

  it('two processes applying the same file at once both start: one creates, the other finds it as declared', async () => {
    // The race CI met: an http and a worker process started together, both saw no subscription
    // "crm", both inserted it, and the second start died on the primary key.
    const other = await makeHub(database.url());
    await other.start();
    try {
      const parsed = parseConfig(
        [
          'version: 1',
          'subscriptions:',
          '  - id: together',
          '    kind: webhook',
          `    url: ${subscriber.url}together`,
          '    allowPrivateAddresses: true',
          '',
        ].join('\n'),
        { file: '/tmp/switchyard.yaml', connectors: [hookConnector as never], env: {} },
      );
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
      const together = parsed.config;
      const [a, b] = await Promise.all([
        applyFileConfig(hub, together, silent),
        applyFileConfig(other, together, silent),
      ]);
      const created = [...a.subscriptions.created, ...b.subscriptions.created];
      // The other process finds it created, as the same file declares it: nothing to write.
      const unchanged = [...a.subscriptions.unchanged, ...b.subscriptions.unchanged];
      expect(created).toEqual(['together']);
      expect(unchanged).toEqual(['together']);
      expect([...a.subscriptions.updated, ...b.subscriptions.updated]).toEqual([]);

      // The same race through the API: one create wins, the other is a coded conflict.
      const input = { id: 'raced', kind: 'webhook' as const, url: `${subscriber.url}raced` };
      const results = await Promise.allSettled([
        hub.subscriptions.create(input),
        other.subscriptions.create(input),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(refused.reason).toMatchObject({ code: 'SY_PIPELINE_CONFLICT' });
    } finally {
      await other.stop();
    }
  }, 60_000);

  it('a process whose secretKey is not the one that sealed the stored secrets is refused at the secretKey line, and writes nothing', async () => {
    // An operator who "rotated" secretKey on one process: before, the start died on
    // "the sealed secret does not authenticate: it was changed, or sealed with another key or
    // context", naming neither secretKey nor the file.
    const refused = await applyWithOtherKey(database.url(), [
      'instances:',
      '  - id: shop',
      '    connector: hooktest',
      '    settings: { apiKey: file-key-0123456789 }',
    ]);
    expect((refused as Error).message).toMatch(/same secretKey/);
    // Nothing was written: the processes with the right key still read the instance.
    expect(await hub.instances.get('shop')).toMatchObject({ id: 'shop' });
  }, 60_000);
});

/**
 * Applies a file whose `secretKey` (line 2) is not the one the database's secrets were sealed with,
 * followed by `lines`, in a hub of that key; expects it refused at that line and returns the error.
 */
async function applyWithOtherKey(url: string, lines: string[]): Promise<unknown> {
  const otherKey = 'another-secret-key-0123456789';
  const other = await makeHub(url, { secretKey: otherKey });
  try {
    const parsed = parseConfig(['version: 1', `secretKey: ${otherKey}`, ...lines, ''].join('\n'), {
      file: '/tmp/switchyard.yaml',
      connectors: [hookConnector as never],
      env: {},
    });
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
    const refused = await applyFileConfig(other, parsed.config, silent).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({
      code: 'SY_CONFIG_INVALID',
      problems: [{ file: '/tmp/switchyard.yaml', line: 2, column: 12, path: 'secretKey' }],
    });
    return refused;
  } finally {
    await other.stop();
  }
}

describe('a database that stores subscriptions and no instance', () => {
  const onlySubscriptions = useTestDatabase();

  it('refuses a process whose secretKey does not open the stored signing secrets, at the secretKey line', async () => {
    // Only the instances' settings were checked: with none stored, a process started with another
    // key came up ready, and every delivery then failed ("the hub could not send it").
    const first = await makeHub(onlySubscriptions.url());
    await first.start();
    try {
      await first.subscriptions.create({ kind: 'webhook', url: 'http://127.0.0.1:9/hook' });
    } finally {
      await first.stop();
    }
    await applyWithOtherKey(onlySubscriptions.url(), []);
  }, 60_000);
});
