/**
 * The published JSON Schemas as a subscriber fetches them from the hub it reads (`/schemas/...`,
 * docs/events.md): every core schema at the path of its `$id`, without a credential, listed by
 * `/schemas/index.json`. They lived only in the repository (downstream-consumer audit).
 */
import { envelopeSchemaId, eventSchemaIds, getSchemas } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import { call, listen, makeHub } from './app.test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  hub = await makeHub(database.url());
  server = await listen(hub);
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

it('serves every published schema at the path of its $id, listed by /schemas/index.json, without a credential', async () => {
  const index = await call(server.base, 'GET', '/schemas/index.json', { token: null });
  expect(index.status).toBe(200);
  const listed = index.json.schemas as Array<{ $id: string; path: string }>;
  const published = getSchemas();
  expect(listed.map((s) => s.$id).sort()).toEqual(published.map((s) => s.$id).sort());
  expect(listed.map((s) => s.$id)).toContain(envelopeSchemaId);
  expect(listed.map((s) => s.$id)).toContain(eventSchemaIds['appointment.cancelled']);
  for (const { $id, path } of listed) {
    expect(new URL($id).pathname, $id).toBe(path);
    const r = await call(server.base, 'GET', path, { token: null });
    expect(r.status, path).toBe(200);
    expect(r.headers.get('content-type'), path).toMatch(/^application\/schema\+json/);
    expect(r.json, path).toEqual(published.find((s) => s.$id === $id));
  }
  const unknown = await call(server.base, 'GET', '/schemas/events/appointment.teleported.json', {
    token: null,
  });
  expect(unknown.status).toBe(404);
  expect(unknown.headers.get('content-type')).toMatch(/^application\/problem\+json/);
});

it('answers with an ETag and a Cache-Control, and 304 to If-None-Match with it', async () => {
  for (const path of ['/schemas/index.json', '/schemas/envelope.json']) {
    const first = await call(server.base, 'GET', path, { token: null });
    const etag = first.headers.get('etag');
    expect(etag, path).toMatch(/^"[A-Za-z0-9_-]+"$/);
    expect(first.headers.get('cache-control'), path).toBe('public, max-age=300, must-revalidate');
    // The same document, the same tag.
    expect((await call(server.base, 'GET', path, { token: null })).headers.get('etag')).toBe(etag);
    for (const ifNoneMatch of [etag!, `W/${etag}`, `"other", ${etag}`, '*']) {
      const again = await call(server.base, 'GET', path, {
        token: null,
        headers: { 'if-none-match': ifNoneMatch },
      });
      expect(again.status, `${path} ${ifNoneMatch}`).toBe(304);
      expect(again.text).toBe('');
      expect(again.headers.get('etag')).toBe(etag);
      expect(again.headers.get('cache-control')).toBe('public, max-age=300, must-revalidate');
    }
    const stale = await call(server.base, 'GET', path, {
      token: null,
      headers: { 'if-none-match': '"other"' },
    });
    expect(stale.status).toBe(200);
    expect(stale.json).toEqual(first.json);
  }
  const envelope = await call(server.base, 'GET', '/schemas/envelope.json', { token: null });
  const event = await call(server.base, 'GET', '/schemas/events/appointment.created.json', { token: null });
  expect(envelope.headers.get('etag')).not.toBe(event.headers.get('etag'));
});

it('answers an unknown schema with a 404 that names the path once, cut to a bounded length', async () => {
  const long = `/schemas/${'x'.repeat(3000)}.json`;
  const r = await call(server.base, 'GET', long, { token: null });
  expect(r.status).toBe(404);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.json.code).toBe('SY_HTTP_NOT_FOUND');
  expect(r.json.instance).toBe(`${long.slice(0, 200)}…`);
  expect(r.text.split('xxxxxxxxxx').length - 1).toBeLessThanOrEqual(20);
  expect(r.text.length).toBeLessThan(800);
  const short = await call(server.base, 'GET', '/schemas/events/appointment.teleported.json', {
    token: null,
  });
  expect(short.json.instance).toBe('/schemas/events/appointment.teleported.json');
  expect(short.text.split('appointment.teleported').length - 1).toBe(1);
  expect(short.headers.get('cache-control')).toBeNull();
});
