// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/** Two processes on one database, one `--role http`, one `--role worker`, with the same config file. */
import { freePort, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  newSigningSecret,
  pushSlotBooked,
  secretEnv,
  spawnSwitchyard,
  tempDir,
  webhookSubscription,
  writeConfig,
} from './helpers.test-support.ts';

const db = useTestDatabase();
const signingSecret = newSigningSecret();
let subscriber: Awaited<ReturnType<typeof startRecordingSubscriber>>;

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: signingSecret });
});
afterAll(async () => {
  await subscriber?.close();
});

it('the http process takes the push, the worker process delivers it', async () => {
  const dir = tempDir('roles');
  const [httpPort, workerPort] = [await freePort(), await freePort()];
  writeConfig(dir, {
    port: httpPort,
    database: '${env:SY_E2E_DATABASE_URL}',
    subscriptions: webhookSubscription('crm', `${subscriber.url}crm`),
  });
  const env = secretEnv(signingSecret, db.url());
  const http = spawnSwitchyard(['start', '--config', 'switchyard.yaml', '--role', 'http'], {
    cwd: dir,
    env,
    port: httpPort,
  });
  let worker: ReturnType<typeof spawnSwitchyard> | undefined;
  try {
    await http.ready();
    expect(await pushSlotBooked(http.url, 'dp', 600001)).toBe(200);
    // Acknowledged and stored, but an http-only process normalizes and delivers nothing.
    await new Promise((r) => setTimeout(r, 1500));
    expect(subscriber.requests).toHaveLength(0);

    worker = spawnSwitchyard(
      ['start', '--config', 'switchyard.yaml', '--role', 'worker', '--port', String(workerPort)],
      { cwd: dir, env, port: workerPort },
    );
    await worker.ready();
    const delivered = await subscriber.waitFor((r) => r.text.includes('"600001"'), 20_000);
    expect(delivered.signature.valid).toBe(true);
    expect(delivered.type).toBe('appointment.created');

    // Pushed while both run: the worker is woken through Postgres (LISTEN/NOTIFY) and delivers it too.
    expect(await pushSlotBooked(http.url, 'dp', 600002)).toBe(200);
    await subscriber.waitFor((r) => r.text.includes('"600002"'), 20_000);
    // A worker takes no vendor traffic.
    expect((await fetch(`${worker.url}/hooks/dp`, { method: 'POST', body: '{}' })).status).toBe(404);
    expect(worker.stderr()).toContain('role: worker');
    expect(worker.stderr()).not.toContain('vendor hooks');
  } finally {
    const codes = await Promise.all([http.stop('SIGTERM'), worker?.stop('SIGTERM') ?? 0]);
    expect(codes).toEqual([0, 0]);
  }
}, 90_000);
