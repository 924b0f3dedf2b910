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
