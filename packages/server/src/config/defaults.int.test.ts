/**
 * The HTTP app's defaults come from the one place (CONFIG_DEFAULTS), like the pipeline library's
 * (defaults.test.ts): a default changed there reaches an app built without the option.
 */
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHub } from '../http/app.test-support.ts';
import { buildApp } from '../http/app.ts';
import type { Hub } from '../pipeline/hub.ts';
import { CONFIG_DEFAULTS } from './schema.ts';

const database = useTestDatabase();
let hub: Hub;

beforeAll(async () => {
  hub = await makeHub(database.url());
}, 60_000);

afterAll(async () => {
  await hub?.stop();
});

describe('buildApp defaults', () => {
  it('takes the body limit from server.bodyLimit of CONFIG_DEFAULTS', async () => {
    // A default other than 1 MiB, to tell the place it is read from apart from a copy of its value.
    const server = CONFIG_DEFAULTS.server as { bodyLimit: string };
    const shipped = server.bodyLimit;
    server.bodyLimit = '256kb';
    try {
      const app = await buildApp({ hub, adminToken: undefined });
      try {
        expect(app.initialConfig.bodyLimit).toBe(256 * 1024);
      } finally {
        await app.close();
      }
    } finally {
      server.bodyLimit = shipped;
    }
  });
});
