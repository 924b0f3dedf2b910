import { readFileSync } from 'node:fs';
import { type JsonObject, validateEvent } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { quableConnector } from './index.ts';
import { eventMap, normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { authorization: 'Bearer qb-test-0123456789abcdef' };
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

async function run(
  body: JsonObject,
  ctx = memoryNormalizeContext<Config>({ instanceId: 'catalog', config }),
) {
  const [notification] = parse(inboundRequest({ body }), config);
  const result = await normalize(notification!, ctx);
  const events = result.events.map((draft, index) =>
    completeEvent(draft, {
      instanceId: ctx.instanceId,
      connector: quableConnector,
      notification: notification!,
      index,
    }),
  );
  for (const event of events) expect(validateEvent(event)).toEqual({ valid: true });
  return { result, events, data: events[0]?.data as JsonObject | undefined, ctx };
}

describe('normalize documents', () => {
  it('maps the vendor example to a catalog document.updated', async () => {
    const body = fixture('doc-example-document-update.json');
    const { events, data, ctx } = await run(body);
    const hubId = await ctx.aliases.hubId('document', 'product_blue_pant');
    expect(events.map((e) => [e.type, e.subject, e.time, e.vendortype])).toEqual([
      ['document.updated', `document/${hubId}`, '2020-06-18T11:48:17+00:00', 'document.update'],
    ]);
    expect(data).toEqual({
      id: hubId,
      vendorIds: [{ system: 'quable', instance: 'catalog', value: 'product_blue_pant', current: true }],
      domain: 'catalog',
      resourceType: 'document',
      code: 'product_blue_pant',
      documentType: 'product',
      author: { kind: 'staff', name: 'john_doe' },
      locales: { updated: ['fr_FR'], inherited: ['en_GB', 'fr_FR'] },
      changedItems: [
        { type: 'field', code: 'color' },
        { type: 'field', code: 'name' },
      ],
      apiUrl: 'https://{{instance}}.quable.com/api/documents/product_blue_pant',
      updatedAt: '2020-06-18T11:48:17+00:00',
      vendor: body,
    });
  });

  it('keeps one hub id per code across create, update and delete', async () => {
    const ctx = memoryNormalizeContext<Config>({ instanceId: 'catalog', config });
    const created = await run(fixture('document-create.json'), ctx);
    const updated = await run(fixture('document-update.json'), ctx);
    const deleted = await run(fixture('document-delete.json'), ctx);
    expect([created, updated, deleted].map((r) => r.events[0]?.type)).toEqual([
      'document.created',
      'document.updated',
      'document.deleted',
    ]);
    expect(new Set([created, updated, deleted].map((r) => r.events[0]?.subject)).size).toBe(1);
    expect(created.data).toMatchObject({ createdAt: '2026-03-10T09:12:03+01:00', changedItems: [] });
    expect(deleted.data).not.toHaveProperty('updatedAt');
    expect(updated.data?.changedItems).toEqual([
      { type: 'field', code: 'name' },
      { type: 'asset', code: 'IMG-88231' },
    ]);
  });

  it('ignores an event older than the last applied to its resource (Quable retries five minutes later): a deleted product does not come back', async () => {
    const ctx = memoryNormalizeContext<Config>({ instanceId: 'catalog', config });
    await run(fixture('document-create.json'), ctx);
    const deleted = await run(fixture('document-delete.json'), ctx);
    expect(deleted.events.map((e) => e.type)).toEqual(['document.deleted']);
    const late = await run(fixture('document-update.json'), ctx);
    expect(late.events).toEqual([]);
    expect(late.result.ignored).toMatch(/arrived after its deletion/);
    // The same code created again later is a new life of the product.
    const again = fixture('document-create.json');
    again.uuid = '0b7e8c1e-5a44-4c55-9d1e-7a1f3f0c0001';
    again.created_at = '2027-01-01T10:00:00+01:00';
    const recreated = await run(again, ctx);
    expect(recreated.events.map((e) => [e.type, e.subject])).toEqual([
      ['document.created', deleted.events[0]!.subject],
    ]);
    // Media likewise: an update older than the one applied changes nothing.
    const media = memoryNormalizeContext<Config>({ instanceId: 'catalog', config });
    const newer = fixture('media-update.json');
    await run(newer, media);
    const older = structuredClone(newer);
    older.uuid = '0b7e8c1e-5a44-4c55-9d1e-7a1f3f0c0002';
    older.created_at = '2020-01-01T00:00:00+00:00';
    expect((await run(older, media)).events).toEqual([]);
  });

  it('reads locales and updated_items at the top level too (the field table puts them there)', async () => {
    const body = fixture('document-update.json');
    const resource = body.resource as JsonObject;
    body.locales = resource.locales!;
    body.updated_items = [{ type: 'field', code: 'price' }, { type: 'field' }];
    delete resource.locales;
    delete resource.updated_items;
    const { data } = await run(body);
    expect(data).toMatchObject({
      locales: { updated: ['fr_FR'], inherited: ['en_GB', 'fr_FR'] },
      changedItems: [{ type: 'field', code: 'price' }],
    });
  });

  it('fails permanently when a document event names no resource code', async () => {
    const body = fixture('document-update.json');
    delete (body.resource as JsonObject).code;
    await expect(run(body)).rejects.toMatchObject({
      kind: 'permanent',
      message: expect.stringContaining('resource.code'),
    });
  });
});

describe('normalize media and processes', () => {
  it('maps media.* to asset.* keyed by the media code', async () => {
    const ctx = memoryNormalizeContext<Config>({ instanceId: 'catalog', config });
    const hubId = await ctx.aliases.hubId('asset', 'IMG-88231');
    const types = [];
    for (const name of ['media-create.json', 'media-update.json', 'media-delete.json']) {
      const { events } = await run(fixture(name), ctx);
      expect(events[0]?.subject).toBe(`asset/${hubId}`);
      types.push(events[0]?.type);
    }
    expect(types).toEqual(['asset.created', 'asset.updated', 'asset.deleted']);
    // On its own: after the deletion, this older update is a late one (ignored, below).
    const alone = memoryNormalizeContext<Config>({ instanceId: 'catalog', config });
    const { data } = await run(fixture('media-update.json'), alone);
    expect(data).toEqual({
      id: await alone.aliases.hubId('asset', 'IMG-88231'),
      vendorIds: [{ system: 'quable', instance: 'catalog', value: 'IMG-88231', current: true }],
      code: 'IMG-88231',
      author: { kind: 'staff', name: 'paul.durand' },
      locales: { updated: ['fr_FR'], inherited: ['fr_FR'] },
      changedItems: [{ type: 'field', code: 'alt_text' }],
      apiUrl: 'https://acme.quable.com/api/assets/IMG-88231',
      vendor: fixture('media-update.json'),
    });
  });

  it('maps each *.finish to process.completed with the process kept', async () => {
    const expected = {
      'bulk-edit-finish.json': ['bulk_edit', '20aaabe5-5dcb-4cbb-80e8-ba75c30bbce0'],
      'import-finish.json': ['import', 'imp-20260310-0042'],
      'export-finish.json': ['export', 'exp-20260310-0007'],
    };
    for (const [name, [kind, id]] of Object.entries(expected)) {
      const body = fixture(name);
      const { events, data, ctx } = await run(body);
      expect(events[0]?.type).toBe('process.completed');
      expect(events[0]?.subject).toBe(`process/${await ctx.aliases.hubId('process', id!)}`);
      expect(data).toEqual({
        id,
        kind,
        correlationId: (body.process as JsonObject).correlationId,
        author: { kind: 'staff', name: 'julie.martin' },
        finishedAt: body.created_at,
        vendor: body,
      });
    }
  });

  it('falls back to the correlation id when a finish event has no process id', async () => {
    const body = fixture('import-finish.json');
    delete (body.process as JsonObject).id;
    delete body.resource;
    const { data } = await run(body);
    expect(data?.id).toBe((body.process as JsonObject).correlationId);
  });
});

describe('ignored events', () => {
  it.each([
    ['variant-update-ignored.json', /variant \(SKU\) events are not mapped.*\(variant\.update\)$/],
    ['link-create-ignored.json', /link events .* not mapped.*\(link\.create\)$/],
    [
      'classification-update-ignored.json',
      /classification events .* not mapped.*\(classification\.update\)$/,
    ],
    ['value-update-ignored.json', /value events .* not mapped.*\(value\.update\)$/],
  ])('%s is stored as ignored with its reason', async (name, reason) => {
    const { result } = await run(fixture(name));
    expect(result.events).toEqual([]);
    expect(result.ignored).toMatch(reason);
  });

  it('ignores unknown codes and unknown actions', async () => {
    const body = fixture('document-update.json');
    expect((await run({ ...body, code: 'channel.update' })).result.ignored).toBe(
      'Quable channel.update has no normalized counterpart',
    );
    expect((await run({ ...body, code: 'document.archive' })).result.ignored).toContain(
      'unknown document action',
    );
    expect((await run({ ...body, code: 'import.start' })).result.ignored).toContain('only import.finish');
  });
});

describe('eventMap', () => {
  it('lists every mapped code with its type, and the ignored families with nothing', () => {
    const rows = Object.fromEntries(eventMap.map((r) => [r.vendorType, r.normalizedTypes]));
    expect(rows['document.delete']).toEqual(['document.deleted']);
    expect(rows['media.create']).toEqual(['asset.created']);
    expect(rows['export.finish']).toEqual(['process.completed']);
    expect(rows['variant.update']).toEqual([]);
    expect(rows['value.delete']).toEqual([]);
    expect(eventMap).toHaveLength(21);
  });

  it('is documented: every vendor type appears in docs/connectors/quable.md', () => {
    const doc = readFileSync(new URL('../../../../docs/connectors/quable.md', import.meta.url), 'utf8');
    for (const row of eventMap) {
      expect(doc, row.vendorType).toContain(`\`${row.vendorType}\``);
      for (const type of row.normalizedTypes) expect(doc, type).toContain(`\`${type}\``);
    }
  });
});
