/**
 * One rule set for a connector instance's input, whoever sends it: the admin route (fastify, the
 * schema of ./schema.ts), the config file (converted, then the same check) and the library API
 * (`hub.instances.upsert`) refuse the same bad values and accept the same good ones. Before, the
 * file took any pull interval and the route any `gate` object.
 */
import { isSwitchyardError } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { acme } from '../config/connectors.test-support.ts';
import { parseConfig } from '../config/load.ts';
import { call, listen, makeHub } from '../http/app.test-support.ts';
import type { Hub } from '../pipeline/hub.ts';
import type { InstanceInput } from './input.ts';

/** One input in the API's form and in the file's (durations). */
interface Case {
  name: string;
  api: Omit<InstanceInput, 'id' | 'connector' | 'settings'>;
  file: Record<string, unknown>;
  /** Settings other than the usual ones. */
  settings?: Record<string, unknown>;
  /** The route's refusal: 400 for what the schema says, 422 for the connector's own rule. */
  refusedWith?: number;
}

const usual = { apiKey: 'acme-key-0123', baseUrl: 'https://acme.example/api' };

const bad: Case[] = [
  { name: 'an unknown mode', api: { mode: 'sometimes' as never }, file: { mode: 'sometimes' } },
  {
    name: 'a pull interval under 100 ms',
    api: { mode: 'pull', pull: { intervalMs: 99 } },
    file: { mode: 'pull', pull: { interval: '99ms' } },
  },
  {
    name: 'a pull its connector cannot make with these settings',
    api: { mode: 'pull' },
    file: { mode: 'pull' },
    settings: { apiKey: 'acme-key-0123', baseUrl: 'https://acme.example/api', region: 'us' },
    refusedWith: 422,
  },
  {
    name: 'an unknown default answer',
    api: { gate: { deadlineMs: 2000, default: 'maybe' as never } },
    file: { gate: { deadline: '2s', default: 'maybe' } },
  },
];

const good: Case[] = [
  { name: 'push with the defaults', api: {}, file: {} },
  {
    name: 'the shortest pull interval',
    api: { mode: 'both', pull: { intervalMs: 100 } },
    file: { mode: 'both', pull: { interval: '100ms' } },
  },
  {
    name: 'a gate that refuses',
    api: { gate: { deadlineMs: 1500, default: 'refuse' } },
    file: { gate: { deadline: '1500ms', default: 'refuse' } },
  },
];

const database = useTestDatabase();
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

beforeAll(async () => {
  hub = await makeHub(database.url(), { connectors: [acme] });
  server = await listen(hub);
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});

let n = 0;
const nextId = () => `case-${++n}`;

async function answers(c: Case): Promise<{ route: number; file: boolean; hub: boolean }> {
  const settings = c.settings ?? usual;
  const route = await call(server.base, 'POST', '/v1/instances', {
    body: { id: nextId(), connector: 'acme', settings, ...c.api },
  });
  const loaded = parseConfig(
    stringify({ version: 1, instances: [{ id: nextId(), connector: 'acme', settings, ...c.file }] }),
    { file: 'inline.yaml', connectors: [acme] },
  );
  let refusedByHub = false;
  try {
    await hub.instances.upsert({ id: nextId(), connector: 'acme', settings, ...c.api });
  } catch (error) {
    if (!isSwitchyardError(error) || error.code !== 'SY_PIPELINE_INVALID_INPUT') throw error;
    refusedByHub = true;
  }
  if (!loaded.ok) expect(loaded.problems[0]?.path).toMatch(/^instances\[0\]/);
  return { route: route.status, file: !loaded.ok, hub: refusedByHub };
}

describe('an instance input gets the same answer from the route, the config file and the hub', () => {
  for (const c of bad) {
    it(`refuses ${c.name}`, async () => {
      expect(await answers(c)).toEqual({ route: c.refusedWith ?? 400, file: true, hub: true });
    });
  }
  for (const c of good) {
    it(`accepts ${c.name}`, async () => {
      expect(await answers(c)).toEqual({ route: 201, file: false, hub: false });
    });
  }

  it('names the duration the file wrote, at its line', () => {
    const loaded = parseConfig(
      `version: 1\ninstances:\n  - id: a\n    connector: acme\n    mode: pull\n    settings: { apiKey: k, baseUrl: "https://acme.example" }\n    pull:\n      interval: 10ms\n`,
      { file: 'inline.yaml', connectors: [acme] },
    );
    expect(loaded.problems).toEqual([
      expect.objectContaining({
        line: 8,
        path: 'instances[0].pull.interval',
        message: 'must be at least 100ms',
      }),
    ]);
  });
});
