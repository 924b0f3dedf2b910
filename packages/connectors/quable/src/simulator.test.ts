import type { EventEnvelope, JsonObject } from '@switchyard/core';
import { inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { type HookReceiver, startHookReceiver } from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QuableSimulator } from './simulator.ts';
import { quableConnector } from './testing.ts';

const AUTHORIZATION = 'Bearer qb-sim-0123456789abcdef';
const config = { authorization: AUTHORIZATION };

let receiver: HookReceiver;
beforeEach(async () => {
  receiver = await startHookReceiver({ path: '/hooks/catalog' });
});
afterEach(async () => {
  await receiver.close();
});

function simulator(options: ConstructorParameters<typeof QuableSimulator>[0] = {}) {
  return new QuableSimulator({
    hookUrl: receiver.url,
    authorization: AUTHORIZATION,
    timeScale: 1e-4,
    ...options,
  });
}

describe('QuableSimulator', () => {
  it('posts a notification with the static Authorization header, which the connector accepts and maps', async () => {
    const sim = simulator();
    const notification = sim.notification('document.update', {
      code: 'product_blue_pant',
      document_type_code: 'product',
      updated_items: [{ type: 'field', code: 'color' }],
    });
    const record = await sim.push(notification);
    expect(record).toMatchObject({ delivered: true, failed: false, skipped: false });
    expect(record.attempts.map((a) => a.outcome)).toEqual(['ok']);
    const [request] = receiver.received;
    expect(request?.headers.authorization).toBe(AUTHORIZATION);

    const inbound = inboundRequest({
      headers: { authorization: AUTHORIZATION },
      body: Buffer.from(request!.body),
    });
    expect(() => quableConnector.push!.authenticate(inbound, config)).not.toThrow();
    const [parsed] = quableConnector.push!.parse(inbound, config);
    expect(parsed).toMatchObject({
      type: 'document.update',
      dedupeKey: notification.uuid,
      orderingKey: 'product_blue_pant',
    });
    const result = await quableConnector.normalize(parsed!, memoryNormalizeContext({ config }));
    expect(result.events[0]).toMatchObject({
      type: 'document.updated',
      data: {
        code: 'product_blue_pant',
        documentType: 'product',
        changedItems: [{ type: 'field', code: 'color' }],
        apiUrl: 'https://acme.quable.com/api/documents/product_blue_pant',
      },
    });
  });

  it('builds media and finish notifications the connector maps to asset and process events', async () => {
    const sim = simulator();
    const ctx = memoryNormalizeContext({ config });
    const types: string[] = [];
    for (const n of [
      sim.notification('media.create', { code: 'IMG-1' }),
      sim.notification('import.finish', { code: 'imp-1' }),
    ]) {
      await sim.push(n);
      const inbound = inboundRequest({
        headers: { authorization: AUTHORIZATION },
        body: n as unknown as JsonObject,
      });
      const [parsed] = quableConnector.push!.parse(inbound, config);
      types.push(...(await quableConnector.normalize(parsed!, ctx)).events.map((e) => e.type));
    }
    expect(types).toEqual(['asset.created', 'process.completed']);
  });

  it('retries a failure five (scaled) minutes later and resets the failure count on success', async () => {
    receiver.answers.push({ status: 500 }, { status: 404 });
    const sim = simulator();
    const record = await sim.push(sim.notification('document.create', { code: 'p1' }));
    expect(record.attempts.map((a) => [a.outcome, a.status])).toEqual([
      ['bad_status', 500],
      ['bad_status', 404],
      ['ok', 200],
    ]);
    expect(record.delivered).toBe(true);
    expect(sim.consecutiveFailures).toBe(0);
    expect(new Set(receiver.received.map((r) => r.body)).size).toBe(1);
  });

  it('counts an answer slower than the limit as a failure', async () => {
    // A generous limit: the good answer that follows must never count as slow on a loaded machine.
    receiver.answers.push({ status: 200, delayMs: 4000 });
    const sim = simulator({ slowAfterMs: 1000 });
    const record = await sim.push(sim.notification('media.update', { code: 'IMG-1' }));
    expect(record.attempts.map((a) => a.outcome)).toEqual(['slow', 'ok']);
    expect(record.attempts[0]?.error).toBe('no answer within 1000 ms');
  });

  it('disables the webhook after three consecutive failures; nothing is sent until re-enabled', async () => {
    receiver.answers.push({ status: 500 }, { status: 502 }, { status: 503 });
    const sim = simulator();
    const failed = await sim.push(sim.notification('document.update', { code: 'p1' }));
    expect(failed).toMatchObject({ delivered: false, failed: true });
    expect(failed.attempts).toHaveLength(3);
    expect(sim.webhookStatus).toBe('disabled');

    const skipped = await sim.push(sim.notification('document.update', { code: 'p2' }));
    expect(skipped).toMatchObject({ skipped: true, attempts: [] });
    expect(receiver.received).toHaveLength(3);

    sim.enableWebhook();
    expect((await sim.push(sim.notification('document.update', { code: 'p3' }))).delivered).toBe(true);
  });

  it('counts failures across notifications, not per notification', async () => {
    receiver.answers.push(
      { status: 500 },
      { status: 500 },
      { status: 200 },
      { status: 500 },
      { status: 500 },
      { status: 500 },
    );
    const sim = simulator({ maxRetries: 0 });
    const outcomes: boolean[] = [];
    for (let i = 0; i < 6; i++)
      outcomes.push((await sim.push(sim.notification('value.update', { code: `v${i}` }))).delivered);
    expect(outcomes).toEqual([false, false, true, false, false, false]);
    expect(sim.webhookStatus).toBe('disabled');
  });

  it('sends no Authorization header when none is configured', async () => {
    const sim = new QuableSimulator({ hookUrl: receiver.url, maxRetries: 0 });
    await sim.push(sim.notification('link.create', { code: 'l1' }));
    expect(receiver.received[0]?.headers.authorization).toBeUndefined();
  });

  it('pushes a normalized event through the connector encode', async () => {
    const sim = simulator();
    const event: EventEnvelope = {
      specversion: '1.0',
      id: 'evt-7',
      type: 'document.deleted',
      source: 'catalog',
      subject: 'document/h1',
      time: '2026-03-12T11:00:00+01:00',
      datacontenttype: 'application/json',
      data: { id: 'h1', vendorIds: [{ system: 'quable', value: 'p9' }], domain: 'catalog', code: 'p9' },
      connector: 'quable',
      instance: 'catalog',
      vendortype: 'document.delete',
    };
    const record = await sim.push(event);
    expect(record.notification).toMatchObject({
      code: 'document.delete',
      resource: { code: 'p9', type: 'document' },
    });
    expect(JSON.parse(receiver.received[0]!.body)).toEqual(record.notification);
  });
});
