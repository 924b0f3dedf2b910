/**
 * The rule for objects declared in the config file, across a restart (docs/configuration.md,
 * "Managed by the file"): what the file declares is refused through the API (409
 * SY_HTTP_FILE_MANAGED), because the next start would silently undo it; what the file does not
 * declare (enabled/disabled, a generated signing secret) is the hub's and survives the restart.
 * A restart is what `start` does: a new hub on the same database, then the file applied again.
 */
import { type RecordingSubscriber, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import type { ResolvedConfig } from '../config/types.ts';
import { verifySignature } from '../delivery/sign.ts';
import { call, hookConnector, listen, makeHub, silent } from '../http/app.test-support.ts';
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

beforeAll(async () => {
  subscriber = await startRecordingSubscriber();
  const yaml = [
    'version: 1',
    'instances:',
    '  - id: shop',
    '    connector: hooktest',
    '    settings: { apiKey: file-key-0123456789 }',
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
    '',
  ].join('\n');
  const parsed = parseConfig(yaml, {
    file: '/tmp/switchyard.yaml',
    connectors: [hookConnector as never],
    env: {},
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
  config = parsed.config;
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
    expect((await admin('DELETE', '/v1/instances/shop')).status).toBe(409);
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

  it('two processes applying the same file at once both start: one creates, the other updates', async () => {
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
      const updated = [...a.subscriptions.updated, ...b.subscriptions.updated];
      expect(created).toEqual(['together']);
      expect(updated).toEqual(['together']);

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
});
