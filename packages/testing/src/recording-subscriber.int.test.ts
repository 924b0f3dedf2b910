import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import { type RecordingSubscriber, startRecordingSubscriber } from './recording-subscriber.ts';

const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

let subscriber: RecordingSubscriber | undefined;
afterEach(async () => {
  await subscriber?.close();
  subscriber = undefined;
});

/** Sends one signed event the way the hub does (several secrets = rotation overlap). */
async function deliver(
  url: string,
  event: Record<string, unknown>,
  secrets: string[],
  init: { timeoutMs?: number; tamper?: boolean } = {},
): Promise<Response> {
  const body = JSON.stringify(event);
  const id = String(event.id);
  const timestamp = new Date();
  const signature = secrets.map((secret) => new Webhook(secret).sign(id, timestamp, body)).join(' ');
  return await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'webhook-signature': signature,
    },
    body: init.tamper ? body.replace('created', 'cancelled') : body,
    signal: init.timeoutMs ? AbortSignal.timeout(init.timeoutMs) : undefined,
  });
}

const event = (n: number, subject = 'appointment/a') => ({
  id: `evt_${n}`,
  type: 'appointment.created',
  subject,
  data: { n },
});

describe('recording subscriber', () => {
  it('records requests and verifies real Standard Webhooks signatures', async () => {
    const secret = newSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret });
    expect(subscriber.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const res = await deliver(`${subscriber.url}hooks?x=1`, event(1), [secret]);
    expect(res.status).toBe(200);
    const [recorded] = await subscriber.waitFor(1);
    expect(recorded).toMatchObject({
      index: 0,
      method: 'POST',
      path: '/hooks?x=1',
      webhookId: 'evt_1',
      type: 'appointment.created',
      subject: 'appointment/a',
      json: event(1),
      signature: { valid: true, matchedSecrets: [0] },
      response: { status: 200, aborted: false },
    });
    expect(recorded?.headers['content-type']).toBe('application/json');
    expect(recorded?.rawBody.toString()).toBe(JSON.stringify(event(1)));
    expect(subscriber.accepted()).toEqual([event(1)]);
  });

  it('flags a wrong secret and a tampered body, and can refuse them', async () => {
    const secret = newSecret();
    subscriber = await startRecordingSubscriber({ secrets: secret, rejectInvalidSignatures: true });
    expect((await deliver(subscriber.url, event(1), [newSecret()])).status).toBe(401);
    expect((await deliver(subscriber.url, event(2), [secret], { tamper: true })).status).toBe(401);
    expect((await deliver(subscriber.url, event(3), [secret])).status).toBe(200);
    expect(subscriber.requests.map((r) => r.signature.valid)).toEqual([false, false, true]);
    expect(subscriber.requests[0]?.signature.error).toBeTruthy();
  });

  it('tells which secrets matched during a rotation', async () => {
    const [oldSecret, newer] = [newSecret(), newSecret()];
    subscriber = await startRecordingSubscriber({ secrets: [oldSecret, newer] });
    await deliver(subscriber.url, event(1), [oldSecret, newer]);
    await deliver(subscriber.url, event(2), [newer]);
    expect(subscriber.requests.map((r) => r.signature.matchedSecrets)).toEqual([[0, 1], [1]]);
  });

  it('answers a scripted status sequence with Retry-After, then the default', async () => {
    subscriber = await startRecordingSubscriber({ script: [500, { status: 429, retryAfter: 7 }, 410] });
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const res = await deliver(subscriber.url, event(i), []);
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
    }
    expect(statuses).toEqual([500, 429, 410, 200]);
    expect(retryAfter).toBe('7');
    expect(subscriber.accepted()).toEqual([event(3)]);
    subscriber.setScript([503]);
    expect((await deliver(subscriber.url, event(5), [])).status).toBe(503);
  });

  it('keeps per-subject scripts apart', async () => {
    subscriber = await startRecordingSubscriber({ subjectScripts: { 'appointment/b': [500, 500] } });
    const a1 = await deliver(subscriber.url, event(1, 'appointment/a'), []);
    const b1 = await deliver(subscriber.url, event(2, 'appointment/b'), []);
    const a2 = await deliver(subscriber.url, event(3, 'appointment/a'), []);
    const b2 = await deliver(subscriber.url, event(4, 'appointment/b'), []);
    const b3 = await deliver(subscriber.url, event(5, 'appointment/b'), []);
    expect([a1, b1, a2, b2, b3].map((r) => r.status)).toEqual([200, 500, 200, 500, 200]);
  });

  it('delays answers so the caller times out, and records the hang-up', async () => {
    subscriber = await startRecordingSubscriber({ script: [{ status: 200, delayMs: 5_000 }] });
    await expect(deliver(subscriber.url, event(1), [], { timeoutMs: 200 })).rejects.toThrow();
    const recorded = await subscriber.waitFor((r) => r.response?.aborted === true);
    expect(recorded.index).toBe(0);
    expect(subscriber.accepted()).toEqual([]);
  });

  it('lets a handler decide (approver mode), falling through when it returns undefined', async () => {
    subscriber = await startRecordingSubscriber({
      defaultResponse: 204,
      handler: (req) => {
        const n = (req.json as { data: { n: number } }).data.n;
        if (n === 3) return undefined;
        return { status: 200, body: { decision: n % 2 === 0 ? 'approve' : 'refuse' } };
      },
    });
    const approve = await deliver(subscriber.url, event(2), []);
    const refuse = await deliver(subscriber.url, event(1), []);
    const fallthrough = await deliver(subscriber.url, event(3), []);
    expect(await approve.json()).toEqual({ decision: 'approve' });
    expect(approve.headers.get('content-type')).toBe('application/json');
    expect(await refuse.json()).toEqual({ decision: 'refuse' });
    expect(fallthrough.status).toBe(204);
  });

  it('waitFor rejects after its timeout with what arrived', async () => {
    subscriber = await startRecordingSubscriber();
    await deliver(subscriber.url, event(1), []);
    await expect(subscriber.waitFor(2, 100)).rejects.toThrow(/got 1: POST \/ appointment\.created → 200/);
    const found = subscriber.waitFor((r) => r.webhookId === 'evt_9', 5_000);
    await deliver(subscriber.url, event(9), []);
    expect((await found).index).toBe(1);
  });

  it('records non-JSON bodies and close() cuts pending delays', async () => {
    subscriber = await startRecordingSubscriber({ defaultResponse: { status: 200, delayMs: 60_000 } });
    const pending = fetch(subscriber.url, { method: 'POST', body: 'not json' }).catch((e: Error) => e);
    const [recorded] = await subscriber.waitFor(1);
    expect(recorded?.json).toBeUndefined();
    expect(recorded?.text).toBe('not json');
    await subscriber.close();
    expect(await pending).toBeInstanceOf(Error);
  });
});
