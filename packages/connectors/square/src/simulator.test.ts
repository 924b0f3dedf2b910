import { readFileSync } from 'node:fs';
import { type InboundRequest, inboundRequestHead, type JsonObject } from '@switchyard/core';
import { inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { type HookReceiver, startHookReceiver } from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SquareSimulator as Simulator } from './simulator.ts';
import { type Config, squareConnector as connector, fixtureUrl } from './testing.ts';

const config: Config = { signatureKey: 'test-signature-key-0123456789' };
const body = JSON.parse(readFileSync(fixtureUrl('booking-created.json'), 'utf8')) as JsonObject;

let receiver: HookReceiver;
beforeEach(async () => {
  receiver = await startHookReceiver({ path: `/hooks/${connector.name}` });
});
afterEach(async () => {
  await receiver.close();
});

/** The URL registered at Square (the hub's publicUrl): what the simulator signs, not where it posts. */
const PUBLIC_HOOK_URL = 'https://hub.example.com/hooks/square';

/** The request the receiver got, as the hub hands it to the connector (hookUrl from its publicUrl). */
function asInbound(index: number, hookUrl = PUBLIC_HOOK_URL) {
  const got = receiver.received[index]!;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(got.headers)) {
    if (typeof value === 'string') headers[name] = value;
  }
  return inboundRequest({ headers, body: Buffer.from(got.body), hookUrl });
}

/** Admits a request as the hub does: authenticate on the head, then verifyBody (when there is one). */
function admit(request: InboundRequest): void {
  connector.push!.authenticate(inboundRequestHead(request), config);
  connector.push!.verifyBody?.(request, config);
}

describe(`${connector.name} simulator`, () => {
  it('pushes a notification the connector authenticates, parses and normalizes', async () => {
    const sim = new Simulator({ hookUrl: receiver.url, notificationUrl: PUBLIC_HOOK_URL, config });
    const record = await sim.push(body);
    expect(record.delivered).toBe(true);
    const request = asInbound(0);
    expect(() => admit(request)).not.toThrow();
    // Signed over the registered URL: checked against the URL it was posted to, it is refused.
    expect(() => admit(asInbound(0, receiver.url))).toThrow(/x-square-hmacsha256-signature/);
    const [notification] = connector.push!.parse(request, config);
    const result = await connector.normalize(notification!, memoryNormalizeContext({ config }));
    expect(result.events.map((e) => e.type)).toEqual(['appointment.created']);
  });

  it('retries a failed push on its schedule (scaled), authenticating each attempt', async () => {
    receiver.answers.push(503, 200);
    const sim = new Simulator({
      hookUrl: receiver.url,
      notificationUrl: PUBLIC_HOOK_URL,
      config,
      retryDelaysMs: [1000],
      timeScale: 0.001,
    });
    const record = await sim.push(body);
    expect(record.attempts.map((a) => a.status)).toEqual([503, 200]);
    expect(record.delivered).toBe(true);
    for (const index of [0, 1]) {
      expect(() => admit(asInbound(index))).not.toThrow();
    }
  });

  it('gives up after its last retry', async () => {
    receiver.answers.push(500, 500);
    const sim = new Simulator({ hookUrl: receiver.url, config, retryDelaysMs: [1000], timeScale: 0.001 });
    const record = await sim.push(body);
    expect(record).toMatchObject({ delivered: false });
    expect(record.attempts).toHaveLength(2);
  });
});

describe('the Bookings API it serves', () => {
  const settings = { ...config, accessToken: 'EAAAtest-access-token-0123456789' };
  let api: Simulator;
  beforeEach(async () => {
    api = new Simulator({ config: settings });
    await api.start();
  });
  afterEach(async () => {
    await api.close();
  });
  const call = async (method: string, path: string, json?: unknown, token = settings.accessToken) => {
    const res = await fetch(`${api.apiBaseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(json === undefined ? {} : { body: JSON.stringify(json) }),
    });
    return { status: res.status, body: (await res.json()) as JsonObject };
  };
  const booking = { start_at: '2026-03-10T10:30:00Z', location_id: 'L1', customer_id: 'C1' };

  it('answers a repeated key with the first answer (keys in any order), and refuses the key with another request', async () => {
    const first = await call('POST', '/bookings', { idempotency_key: 'k1', booking });
    const again = await call('POST', '/bookings', { booking, idempotency_key: 'k1' });
    expect(first.status).toBe(200);
    expect(again).toEqual(first);
    expect(api.bookings.size).toBe(1);
    const reused = await call('POST', '/bookings', {
      idempotency_key: 'k1',
      booking: { ...booking, start_at: '2026-03-11T10:30:00Z' },
    });
    expect(reused).toMatchObject({ status: 400, body: { errors: [{ code: 'IDEMPOTENCY_KEY_REUSED' }] } });
    expect(api.bookings.size).toBe(1);
  });

  it('refuses a write naming a stale version, and a call without the access token', async () => {
    const made = (await call('POST', '/bookings', { idempotency_key: 'k2', booking })).body
      .booking as JsonObject;
    const id = String(made.id);
    expect(
      (
        await call('PUT', `/bookings/${id}`, {
          idempotency_key: 'k3',
          booking: { version: 0, start_at: booking.start_at },
        })
      ).status,
    ).toBe(200);
    const stale = await call('POST', `/bookings/${id}/cancel`, { idempotency_key: 'k4', booking_version: 0 });
    expect(stale).toMatchObject({ status: 409, body: { errors: [{ code: 'VERSION_MISMATCH' }] } });
    expect((await call('GET', `/bookings/${id}`, undefined, 'wrong-token')).status).toBe(401);
  });
});
