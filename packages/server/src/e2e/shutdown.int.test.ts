// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * SIGTERM under load loses nothing that was acknowledged: every push that got a 2xx is delivered
 * after a restart, exactly once per event id (retries and replays reuse the webhook-id).
 */
import { freePort, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  bookingIdOf,
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

const N = 200;
const IN_FLIGHT = 16;

it('SIGTERM during a burst of pushes: exit 0, and every acknowledged push is delivered after restart', async () => {
  const dir = tempDir('shutdown');
  const port = await freePort();
  writeConfig(dir, {
    port,
    database: '${env:SY_E2E_DATABASE_URL}',
    subscriptions: webhookSubscription('crm', `${subscriber.url}crm`),
  });
  const env = secretEnv(signingSecret, db.url());
  const first = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], { cwd: dir, env, port });
  await first.ready();

  const ids = Array.from({ length: N }, (_, i) => 700_000 + i);
  const statuses = new Map<number, number>();
  let next = 0;
  let answered = 0;
  let signalled = false;
  const worker = async () => {
    while (next < ids.length) {
      const id = ids[next++]!;
      statuses.set(id, await pushSlotBooked(first.url, 'dp', id));
      answered++;
      if (!signalled && answered >= N / 2) {
        signalled = true;
        first.child.kill('SIGTERM');
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  expect(signalled).toBe(true);
  expect(await first.exited).toBe(0);

  const acknowledged = ids.filter((id) => {
    const s = statuses.get(id)!;
    return s >= 200 && s < 300;
  });
  // Pushes after the signal were refused (connection closed or 503), never half-taken.
  for (const id of ids) expect([0, 200, 503]).toContain(statuses.get(id));
  expect(acknowledged.length).toBeGreaterThanOrEqual(N / 2);
  expect(acknowledged.length).toBeLessThan(N);

  const second = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], { cwd: dir, env, port });
  try {
    await second.ready();
    const wanted = new Set(acknowledged);
    const seen = () =>
      new Set(
        subscriber.requests
          .filter((r) => r.response?.status === 200)
          .map((r) => bookingIdOf(r.text, ids))
          .filter((id): id is number => id !== undefined && wanted.has(id)),
      );
    const deadline = Date.now() + 40_000;
    while (seen().size < wanted.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(seen().size).toBe(wanted.size);

    // Every delivery verified, and one webhook-id per notification however often it was sent.
    const webhookIds = new Map<number, Set<string>>();
    for (const request of subscriber.requests) {
      expect(request.signature.valid).toBe(true);
      const id = bookingIdOf(request.text, ids);
      expect(id).toBeDefined();
      const set = webhookIds.get(id!) ?? new Set<string>();
      set.add(request.webhookId!);
      webhookIds.set(id!, set);
    }
    for (const set of webhookIds.values()) expect(set.size).toBe(1);
  } finally {
    expect(await second.stop('SIGTERM')).toBe(0);
  }
}, 110_000);
