// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the config file uses a ${env:...} reference on purpose.
/**
 * `switchyard inbound renormalize` against a running hub's database (in process, real Postgres):
 * every failed message of an instance queued again in batches and followed until the hub's workers
 * normalized it, a message that fails again not taken twice (the command ends); by id, with the
 * ids it cannot queue named; and the admin API's bulk route it mirrors (real HTTP).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { call, listen } from '../../http/app.test-support.ts';
import {
  behaviour,
  eventually,
  makeHub,
  push,
  resetBehaviour,
  SECRET_KEY,
  setupInstance,
} from '../../pipeline/fixtures.test-support.ts';
import type { Hub } from '../../pipeline/hub.ts';
import type { CliIO } from '../command.ts';
import { main } from '../main.ts';

const database = useTestDatabase();
const dir = mkdtempSync(join(tmpdir(), 'switchyard-inbound-'));
let hub: Hub;
let server: Awaited<ReturnType<typeof listen>>;

function memoryIO(): CliIO & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    env: { HUB_DATABASE_URL: database.url() },
    cwd: dir,
    out: () => out,
    err: () => err,
  };
}

async function run(...argv: string[]) {
  const io = memoryIO();
  const code = await main(['inbound', ...argv, '--config', 'switchyard.yaml'], io);
  return { code, stdout: io.out(), stderr: io.err() };
}

/** Pushes `n` notifications of `type` to the instance and waits until each is no longer waiting. */
async function failing(instance: string, prefix: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await hub.ingest(
      instance,
      push({ id: `${prefix}-${i}`, type: 'cancelled', booking: `${prefix}-${i}` }),
    );
    if (!r.ok) throw new Error('ingest failed');
    ids.push(r.stored[0]!);
  }
  await eventually(async () => {
    for (const id of ids) if ((await hub.inbound.get(id)).status !== 'failed') return undefined;
    return true;
  });
  return ids;
}

beforeAll(async () => {
  writeFileSync(
    join(dir, 'switchyard.yaml'),
    ['version: 1', 'database:', '  url: ${env:HUB_DATABASE_URL}', `secretKey: ${SECRET_KEY}`, ''].join('\n'),
  );
  hub = await makeHub(database.url());
  await hub.start();
  await setupInstance(hub, 'acme-1');
  await setupInstance(hub, 'acme-2');
  server = await listen(hub);
});
afterAll(async () => {
  await server?.close();
  await hub?.stop();
});
beforeEach(() => resetBehaviour());

describe('switchyard inbound renormalize --failed', () => {
  it('queues every failed message of the instance, follows them, and ends when they fail again', async () => {
    behaviour.broken.add('cancelled');
    const ids = await failing('acme-1', 'bulk', 7);
    const other = await failing('acme-2', 'other', 1);
    // Still broken: each fails again, is not taken a second time, and the command says so (exit 1).
    const again = await run('renormalize', '--failed', '--instance', 'acme-1', '--wait');
    expect(again).toMatchObject({
      code: 1,
      stdout: 'queued 7 failed message(s) of instance acme-1\n0 normalized, 0 ignored, 7 failed\n',
    });
    // The connector fixed: every one normalized, the other instance's message untouched.
    behaviour.broken.clear();
    const fixed = await run('renormalize', '--failed', '--instance', 'acme-1', '--wait');
    expect(fixed).toMatchObject({
      code: 0,
      stdout: 'queued 7 failed message(s) of instance acme-1\n7 normalized, 0 ignored, 0 failed\n',
    });
    for (const id of ids) expect((await hub.inbound.get(id)).status).toBe('normalized');
    expect((await hub.inbound.get(other[0]!)).status).toBe('failed');
    // --since: only messages received since then (none in the future).
    const since = await run(
      'renormalize',
      '--failed',
      '--instance',
      'acme-2',
      '--since',
      '2999-01-01T00:00:00Z',
    );
    expect(since).toMatchObject({
      code: 0,
      stdout: 'queued 0 failed message(s) of instance acme-2 received since 2999-01-01T00:00:00.000Z\n',
    });
    expect((await hub.inbound.get(other[0]!)).status).toBe('failed');
  });

  it('says what is wrong with the command line or the instance', async () => {
    expect(await run('renormalize')).toMatchObject({
      code: 2,
      stderr: 'switchyard: inbound renormalize needs message ids, or --failed --instance ID (not both)\n',
    });
    expect((await run('renormalize', '--failed')).stderr).toBe('switchyard: --failed needs --instance ID\n');
    expect(
      (await run('renormalize', '--failed', '--instance', 'acme-1', '--since', 'yesterday')).stderr,
    ).toMatch(/--since must be an ISO date-time/);
    expect(await run('renormalize', '--failed', '--instance', 'nope')).toMatchObject({
      code: 2,
      stderr: 'switchyard: no instance "nope"\n',
    });
  });
});

describe('switchyard inbound renormalize ID…', () => {
  it('queues each failed message named and names the ones it cannot queue', async () => {
    behaviour.broken.add('cancelled');
    const [failed] = await failing('acme-1', 'one', 1);
    behaviour.broken.clear();
    const unknown = '00000000-0000-4000-8000-000000000000';
    const r = await run('renormalize', failed!, unknown, '--wait');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe(`queued ${failed}\nqueued 1 of 2 message(s)\n1 normalized, 0 ignored, 0 failed\n`);
    expect(r.stderr).toBe(`${unknown}: no inbound message "${unknown}"\n`);
    // Normalized now: not failed nor ignored, so not queued.
    expect((await run('renormalize', failed!)).stderr).toBe(
      `${failed}: inbound message ${failed} is normalized\n`,
    );
  });
});

describe('POST /v1/inbound/renormalize', () => {
  it('queues failed messages a page at a time, with the bound to pass back', async () => {
    behaviour.broken.add('cancelled');
    const ids = await failing('acme-2', 'api', 3);
    const first = await call(server.base, 'POST', '/v1/inbound/renormalize', {
      body: { instanceId: 'acme-2', status: 'failed', limit: 2 },
    });
    expect(first.status).toBe(202);
    // acme-2 also has the earlier test's failed message, oldest first.
    expect(first.json).toMatchObject({ ids: [expect.any(String), ids[0]], more: true });
    await eventually(async () => ((await hub.inbound.get(ids[0]!)).status === 'failed' ? true : undefined));
    // The bound passed back: the message that failed again is not taken a second time.
    const next = await call(server.base, 'POST', '/v1/inbound/renormalize', {
      body: { instanceId: 'acme-2', status: 'failed', limit: 2, failedBefore: first.json.failedBefore },
    });
    expect(next.json).toMatchObject({ ids: [ids[1], ids[2]], more: true });
    const last = await call(server.base, 'POST', '/v1/inbound/renormalize', {
      body: { instanceId: 'acme-2', status: 'failed', limit: 2, failedBefore: first.json.failedBefore },
    });
    expect(last.json).toMatchObject({ ids: [], more: false });
  });

  it('refuses an unknown instance and a body that does not match its schema, as problem+json', async () => {
    const unknown = await call(server.base, 'POST', '/v1/inbound/renormalize', {
      body: { instanceId: 'nope', status: 'failed' },
    });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(unknown.json.code).toBe('SY_PIPELINE_NOT_FOUND');
    const bad = await call(server.base, 'POST', '/v1/inbound/renormalize', {
      body: { instanceId: 'acme-1', status: 'normalized' },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe('SY_HTTP_VALIDATION');
    const noToken = await call(server.base, 'POST', '/v1/inbound/renormalize', {
      token: null,
      body: { instanceId: 'acme-1', status: 'failed' },
    });
    expect(noToken.status).toBe(401);
  });
});
