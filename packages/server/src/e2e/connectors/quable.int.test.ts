/**
 * Quable PIM end to end: the simulator POSTs every documented notification (the connector's
 * fixtures) with the webhook's static Authorization header over real HTTP; the hub delivers catalog
 * documents, assets and finished processes as signed CloudEvents and stores the rest as ignored.
 */
import quable from '@switchyard/connector-quable';
import { QuableSimulator } from '@switchyard/connector-quable/simulator';
import type { JsonObject, JsonValue } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './fixtures.test-support.ts';
import { bodies, type E2e, expectDelivered, startE2e } from './harness.test-support.ts';

const AUTHORIZATION = 'Bearer qb-e2e-0123456789abcdef';
const INSTANCE = 'quable-main';

const FIXTURES: Array<{ file: string; expect: string[] | 'ignored' }> = [
  { file: 'document-create.json', expect: ['document.created'] },
  { file: 'media-create.json', expect: ['asset.created'] },
  { file: 'document-update.json', expect: ['document.updated'] },
  { file: 'media-update.json', expect: ['asset.updated'] },
  { file: 'doc-example-document-update.json', expect: ['document.updated'] },
  { file: 'bulk-edit-finish.json', expect: ['process.completed'] },
  { file: 'import-finish.json', expect: ['process.completed'] },
  { file: 'export-finish.json', expect: ['process.completed'] },
  { file: 'variant-update-ignored.json', expect: 'ignored' },
  { file: 'link-create-ignored.json', expect: 'ignored' },
  { file: 'classification-update-ignored.json', expect: 'ignored' },
  { file: 'value-update-ignored.json', expect: 'ignored' },
  { file: 'document-delete.json', expect: ['document.deleted'] },
  { file: 'media-delete.json', expect: ['asset.deleted'] },
];

type Body = Record<string, JsonValue> & { type: string; subject: string; data: JsonObject };

const database = useTestDatabase();
let e2e: E2e;
let sim: QuableSimulator;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [quable] });
  await e2e.hub.instances.upsert({
    id: INSTANCE,
    connector: 'quable',
    mode: 'push',
    settings: { authorization: AUTHORIZATION },
  });
  sim = new QuableSimulator({ hookUrl: e2e.hookUrl(INSTANCE), authorization: AUTHORIZATION });
});

afterAll(async () => {
  await e2e?.close();
});

describe('quable end to end', () => {
  const delivered = new Map<string, Body>();

  it('delivers every documented notification as signed, valid CloudEvents; unmapped codes are ignored', async () => {
    for (const f of FIXTURES) {
      const settled = await e2e.settle(INSTANCE, () => sim.push(fixture('quable', f.file)));
      expect(sim.pushes[sim.pushes.length - 1]!.delivered, f.file).toBe(true);
      expect(settled.messages, f.file).toHaveLength(1);
      const message = settled.messages[0]!;
      if (f.expect === 'ignored') {
        expect(message.status, f.file).toBe('ignored');
        expect(message.reason, f.file).toBeTruthy();
        expect(settled.events).toEqual([]);
        continue;
      }
      expect(message.status, `${f.file}: ${message.reason ?? ''}`).toBe('normalized');
      expect(
        settled.deliveries.map((d) => d.type),
        f.file,
      ).toEqual(f.expect);
      settled.deliveries.forEach((d, i) => {
        expectDelivered(d, settled.events[i]!, { instanceId: INSTANCE, connector: 'quable' });
      });
      delivered.set(f.file, bodies(settled)[0] as Body);
    }
    const expected = FIXTURES.flatMap((f) => (f.expect === 'ignored' ? [] : f.expect));
    const accepted = e2e.subscriber.requests.filter((r) => r.response && r.response.status < 300);
    expect(accepted.map((r) => r.type)).toEqual(expected);
    const ignored = (await e2e.hub.inbound.list({ instanceId: INSTANCE, status: 'ignored', limit: 100 }))
      .items;
    expect(ignored.map((m) => m.vendorType).sort()).toEqual([
      'classification.update',
      'link.create',
      'value.update',
      'variant.update',
    ]);
  });

  it('keeps one subject per catalog document and per asset', () => {
    const doc = delivered.get('document-create.json')!;
    expect(doc.subject).toMatch(/^document\//);
    expect(doc.data.domain).toBe('catalog');
    expect(delivered.get('document-update.json')!.subject).toBe(doc.subject);
    expect(delivered.get('document-delete.json')!.subject).toBe(doc.subject);
    expect(delivered.get('doc-example-document-update.json')!.subject).not.toBe(doc.subject);
    const asset = delivered.get('media-create.json')!;
    expect(asset.subject).toMatch(/^asset\//);
    expect(delivered.get('media-update.json')!.subject).toBe(asset.subject);
    expect(delivered.get('media-delete.json')!.subject).toBe(asset.subject);
    const processes = ['bulk-edit-finish.json', 'import-finish.json', 'export-finish.json'].map(
      (f) => delivered.get(f)!.subject,
    );
    expect(new Set(processes).size).toBe(3);
    for (const s of processes) expect(s).toMatch(/^process\//);
  });

  it('a notification built by the simulator (fresh uuid) is delivered too', async () => {
    const n = sim.notification('document.update', { code: 'product_red_shirt', type: 'document' });
    const settled = await e2e.settle(INSTANCE, () => sim.push(n));
    expect(settled.deliveries.map((d) => d.type)).toEqual(['document.updated']);
    expectDelivered(settled.deliveries[0]!, settled.events[0]!, {
      instanceId: INSTANCE,
      connector: 'quable',
    });
    expect(bodies(settled)[0]!.subject).toBe(delivered.get('document-create.json')!.subject);
  });

  it('stores a uuid once: a retry is answered 200 and stored nothing; another body under the same uuid is not stored either', async () => {
    const first = sim.notification('document.update', { code: 'product_green_hat', type: 'document' });
    const settled = await e2e.settle(INSTANCE, () => sim.push(first));
    expect(settled.deliveries.map((d) => d.type)).toEqual(['document.updated']);
    const stored = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items.length;
    // Quable's retry repeats the event; a body that differs under the same uuid is not a new event
    // (the uuid names it), and a non-2xx would count towards disabling the webhook.
    const retry = await sim.push(first);
    const other = await sim.push({ ...first, code: 'document.delete' });
    expect([...retry.attempts, ...other.attempts].map((a) => a.status)).toEqual([200, 200]);
    const items = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items;
    expect(items).toHaveLength(stored);
    const kept = items.filter((m) => m.dedupeKey === first.uuid);
    expect(kept.map((m) => m.vendorType)).toEqual(['document.update']);
  });

  it('refuses a notification with the wrong Authorization: Quable retries, then disables the webhook', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items.length;
    const wrong = new QuableSimulator({
      hookUrl: e2e.hookUrl(INSTANCE),
      authorization: 'Bearer qb-e2e-wrong-000000000',
      retryIntervalMs: 10,
    });
    const record = await wrong.push(fixture('quable', 'document-update.json'));
    expect(record.attempts.map((a) => a.status)).toEqual([401, 401, 401]);
    expect(wrong.webhookStatus).toBe('disabled');
    expect((await e2e.hub.inbound.list({ instanceId: INSTANCE, limit: 500 })).items).toHaveLength(before);
  });
});
