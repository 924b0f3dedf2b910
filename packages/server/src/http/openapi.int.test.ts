// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the config file uses ${env:...} references on purpose.
/**
 * The OpenAPI document as a started hub serves it (every plugin `switchyard start` registers: the
 * gates' admin routes, the dashboard) passes a third-party validator, the first step of a client
 * generator, and leaves the dashboard out; and it describes each command type's body and result, so
 * a generated client can send a `slot.block` and read its `result.slotId`.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileErrors, validate } from '@readme/openapi-parser';
import { commandSchemaIds, commandTypes, createAjv, getSchemas } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { expect, it } from 'vitest';
import { loadConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { startHubProcess } from '../runtime/process.ts';
import { silent } from './app.test-support.ts';
import type { SwitchyardApp } from './app.ts';

const db = useTestDatabase();

it('GET /v1/openapi.json of a started hub is valid for @readme/openapi-parser, without the dashboard', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-openapi-'));
  const file = join(dir, 'switchyard.yaml');
  writeFileSync(
    file,
    [
      'version: 1',
      'server:',
      '  host: 127.0.0.1',
      '  adminToken: ${env:ADMIN_TOKEN}',
      'database:',
      '  url: ${env:DB_URL}',
      'secretKey: ${env:SECRET_KEY}',
      '',
    ].join('\n'),
  );
  const env = {
    ADMIN_TOKEN: 'openapi-admin-token-1234',
    DB_URL: db.url(),
    SECRET_KEY: 'openapi-secret-key-0123456789',
  };
  const loaded = await loadConfig(file, { env, connectors: shippedConnectors });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const sink = { write: () => true };
  const hub = await startHubProcess(loaded.config, {
    io: { stderr: sink, env, cwd: dir },
    logger: silent,
    port: 0,
  });
  try {
    const address = hub.app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const response = await fetch(`http://127.0.0.1:${port}/v1/openapi.json`);
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      paths: Record<string, Record<string, { operationId: string }>>;
    };

    const result = await validate(structuredClone(document) as unknown as Parameters<typeof validate>[0]);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);

    // The dashboard is served by this hub, but its pages are not part of the API.
    const served = (hub.app as SwitchyardApp).switchyard.routes.routes.map((r) => r.url);
    expect(served).toContain('/ui/');
    expect(Object.keys(document.paths).filter((path) => path.startsWith('/ui'))).toEqual([]);
    // The gates' admin routes are part of it.
    expect(Object.keys(document.paths).some((path) => path.startsWith('/v1/gates'))).toBe(true);

    // Each command type's body, from the catalog: every catalog example fits the documented body,
    // and one without what its type requires does not (the body was `data: object` for all types).
    // biome-ignore lint/suspicious/noExplicitAny: the document is read field by field.
    const doc = document as any;
    const send = doc.paths['/v1/commands'].post;
    const body = send.requestBody.content['application/json'].schema;
    const fits = createAjv({ strict: false }).compile({ ...body, components: doc.components });
    const examples = commandTypes.map(
      (type) => (getSchemas().find((x) => x.$id === commandSchemaIds[type])!.examples as unknown[])[0],
    );
    for (const example of examples) expect(fits(example), JSON.stringify(fits.errors)).toBe(true);
    const block = examples.find((x) => (x as { type: string }).type === 'slot.block') as {
      data: Record<string, unknown>;
    };
    expect(fits({ ...block, data: { ...block.data, end: undefined } })).toBe(false);
    expect(fits({ ...block, data: { ...block.data, start: '2026-03-11T13:00:00' } })).toBe(false);
    expect(fits({ type: 'slot.unblock', instance: 'docplanner-main', data: {} })).toBe(false);
    expect(doc.components.schemas.SlotBlockCommand.properties.type).toEqual({ const: 'slot.block' });
    // The result names what a creating command made.
    const resultSchema = send.responses['202'].content['application/json'].schema.properties.result;
    expect(Object.keys(resultSchema.properties)).toEqual([
      'appointmentId',
      'slotId',
      'vendorIds',
      'alreadyDone',
      'unchanged',
    ]);

    // The plugins' routes (gates, commands) answer an empty id as the hub's own do: 404, no such item.
    for (const path of ['/v1/gates/', '/v1/commands/']) {
      const empty = await fetch(`http://127.0.0.1:${port}${path}`, {
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` },
      });
      expect(empty.status, path).toBe(404);
      expect(((await empty.json()) as { code: string }).code, path).toBe('SY_HTTP_NOT_FOUND');
    }
  } finally {
    await hub.stop();
  }
}, 60_000);
