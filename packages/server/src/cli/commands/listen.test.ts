import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '@switchyard/testing/postgres';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { generateSecret, signPayload } from '../../delivery/sign.ts';
import { heartbeatBundle } from '../../fhir/notification.ts';
import { describeDelivery } from './listen.ts';

const bin = fileURLToPath(new URL('../../../bin/switchyard.mjs', import.meta.url));
const children: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const child of children.splice(0)) child.kill('SIGTERM');
});

function signed(secret: string, body: string) {
  return signPayload({ id: 'evt-1', timestamp: new Date(), body, secrets: [secret] });
}

describe('switchyard listen', () => {
  it('describes a delivery with its verified signature, and a forged one as invalid', () => {
    const secret = generateSecret();
    const body = JSON.stringify({ type: 'appointment.created', subject: 'appointment/a1' });
    const line = describeDelivery(signed(secret, body), Buffer.from(body), [secret]);
    expect(line).toContain('appointment.created  appointment/a1  webhook-id evt-1  signature ok');
    const forged = describeDelivery(signed(generateSecret(), body), Buffer.from(body), [secret]);
    expect(forged).toContain('signature INVALID');
    expect(forged).not.toContain(secret);
  });

  it('describes a FHIR delivery by its event type tag and resource, a notification with its event number', () => {
    const secret = generateSecret();
    const appointment = {
      resourceType: 'Appointment',
      id: 'a1',
      meta: {
        tag: [{ system: 'https://switchyard.dev/fhir/CodeSystem/event-type', code: 'appointment.created' }],
      },
    };
    const plain = JSON.stringify(appointment);
    expect(describeDelivery(signed(secret, plain), Buffer.from(plain), [secret])).toContain(
      'appointment.created  Appointment/a1  webhook-id evt-1  signature ok',
    );
    const status = {
      resourceType: 'Parameters',
      parameter: [{ name: 'notification-event', part: [{ name: 'event-number', valueString: '7' }] }],
    };
    const notification = JSON.stringify({
      resourceType: 'Bundle',
      type: 'history',
      entry: [{ resource: status }, { resource: appointment }],
    });
    expect(describeDelivery(signed(secret, notification), Buffer.from(notification), [secret])).toContain(
      'appointment.created  Appointment/a1 (event 7)  webhook-id evt-1  signature ok',
    );
    // A subscription test's heartbeat (fhir/notification.ts) carries no resource: its kind is said.
    const heartbeat = JSON.stringify(
      heartbeatBundle({
        subscriptionId: 'ehr',
        bundleId: 'b1',
        statusId: '7d9f5f0e-1b2c-4d3e-8f40-5a6b7c8d9e0f',
        timestamp: '2026-03-10T11:00:00Z',
        eventsSinceSubscriptionStart: '7',
      }),
    );
    expect(describeDelivery(signed(secret, heartbeat), Buffer.from(heartbeat), [secret])).toContain(
      'heartbeat  Subscription/ehr  webhook-id evt-1  signature ok',
    );
  });

  it('prints the line the README shows, timestamp included', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../../../../README.md', import.meta.url)), 'utf8');
    const shown = /`listen` prints one line per delivery,\s+`([^`]+)`/.exec(readme)?.[1];
    expect(shown).toBeDefined();
    // `<placeholder>`s stand for one word each; the rest is literal.
    const pattern = shown!
      .split(/<[^>]+>/)
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('\\S+');
    const secret = generateSecret();
    const body = JSON.stringify({ type: 'appointment.created', subject: 'appointment/a1' });
    expect(describeDelivery(signed(secret, body), Buffer.from(body), [secret])).toMatch(
      new RegExp(`^${pattern}$`),
    );
  });

  // With --refuse the lines read as with 200 ("signature ok"), so a user watching retries could not
  // tell from the output that the deliveries were refused.
  it.each([
    { refuse: false, status: 200, says: '' },
    { refuse: true, status: 409, says: '  answered 409 refuse' },
  ])(
    "serves the subscription's URL from the config file and prints each delivery, with only that subscription's secrets set (refuse: $refuse)",
    async ({ refuse, status, says }) => {
      const secret = generateSecret();
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'sy-listen-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const config = join(dir, 'switchyard.yaml');
      writeFileSync(
        config,
        [
          // The hub's file on the subscriber's machine: the hub's key and the vendors' are not set.
          'version: 1',
          'database:',
          '  url: postgres://unused@127.0.0.1:1/unused',
          'secretKey: $' + '{env:SY_LISTEN_TEST_UNSET_KEY}',
          'instances:',
          '  - id: quable',
          '    connector: quable',
          '    settings: { authorization: "$' + '{env:SY_LISTEN_TEST_UNSET_AUTH}" }',
          'subscriptions:',
          '  - id: warehouse',
          '    kind: pull',
          '    secrets: ["$' + '{env:SY_LISTEN_TEST_UNSET_FEED}"]',
          '  - id: crm',
          '    kind: webhook',
          `    url: http://127.0.0.1:${port}/in`,
          `    secrets: ["${secret}"]`,
          '    allowPrivateAddresses: true',
          '',
        ].join('\n'),
      );
      // Without --subscription: the first webhook subscription.
      const child = spawn(
        process.execPath,
        [bin, 'listen', '--config', config, ...(refuse ? ['--refuse'] : [])],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stdout?.on('data', (c: Buffer) => {
        stdout += c.toString();
      });
      child.stderr?.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      await waitUntil(
        () => stderr.includes('listening for crm'),
        () => stderr,
      );
      const body = JSON.stringify({ type: 'appointment.created', subject: 'appointment/a1' });
      const res = await fetch(`http://127.0.0.1:${port}/in`, {
        method: 'POST',
        headers: { ...signed(secret, body), 'content-type': 'application/cloudevents+json' },
        body,
      });
      expect(res.status).toBe(status);
      await waitUntil(
        () => stdout.includes('signature ok'),
        () => stdout + stderr,
      );
      expect(stdout).toContain('appointment.created');
      expect(stdout).toMatch(new RegExp(`signature ok${says}\n$`));
      expect(stderr.includes('answering 409')).toBe(refuse);
      expect(stdout + stderr).not.toContain(secret);
    },
  );
});

async function waitUntil(ok: () => boolean, show: () => string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out; output so far:\n${show()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
