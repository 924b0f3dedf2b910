// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config files use ${env:...} references on purpose.
/**
 * `switchyard start` as an operator runs it: a child process on a config file, driven over HTTP,
 * plus the operational commands (`migrate`, `events list`, `replay`) against the same database.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startRecordingSubscriber, useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ADMIN_TOKEN,
  newSigningSecret,
  PUSH_KEY,
  pushSlotBooked,
  runSwitchyard,
  SECRET_KEY,
  secretEnv,
  spawnSwitchyard,
  tempDir,
  webhookSubscription,
  writeConfig,
} from './helpers.test-support.ts';

const db = useTestDatabase();
const dir = tempDir('start');
const signingSecret = newSigningSecret();
let subscriber: Awaited<ReturnType<typeof startRecordingSubscriber>>;

beforeAll(async () => {
  subscriber = await startRecordingSubscriber({ secrets: signingSecret });
});
afterAll(async () => {
  await subscriber?.close();
});

const env = () => secretEnv(signingSecret, db.url());

describe('switchyard migrate', () => {
  it('is the only command that migrates a real database: events list on one behind refuses and changes nothing', async () => {
    writeConfig(dir, {
      port: 1,
      database: '${env:SY_E2E_DATABASE_URL}',
      subscriptions: [],
      name: 'migrate.yaml',
    });
    const list = await runSwitchyard(['events', 'list', '--config', 'migrate.yaml'], {
      cwd: dir,
      env: env(),
    });
    expect(list.code, list.stderr).toBe(2);
    expect(list.stderr).toMatch(/the database schema lacks migration\(s\) 1, 2, .* run `switchyard migrate`/);
    expect(list.stdout).toBe('');
  });

  it('applies the migrations on a fresh database, then finds it up to date', async () => {
    const first = await runSwitchyard(['migrate', '--config', 'migrate.yaml'], { cwd: dir, env: env() });
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/^applied migrations 1(, \d+)*; the schema is at version \d+\n$/);
    const again = await runSwitchyard(['migrate', '--config', 'migrate.yaml'], { cwd: dir, env: env() });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^the schema is up to date \(version \d+\)\n$/);
  });
});

describe('switchyard start', () => {
  it('refuses a bad config with file:line problems and exit 1', async () => {
    writeFileSync(
      join(dir, 'broken.yaml'),
      ['version: 1', 'instances:', '  - id: main', '    connector: docplaner', ''].join('\n'),
    );
    const result = await runSwitchyard(['start', '--config', 'broken.yaml'], { cwd: dir, env: env() });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('broken.yaml:4:16 instances[0].connector: unknown connector "docplaner"');
    expect(result.stderr).toContain('broken.yaml: 1 problem; not started');
    expect(result.stdout).toBe('');
  });

  it('refuses a real database without secretKey, naming the field', async () => {
    writeFileSync(
      join(dir, 'nokey.yaml'),
      ['version: 1', 'database:', '  url: ${env:SY_E2E_DATABASE_URL}', ''].join('\n'),
    );
    const result = await runSwitchyard(['start', '--config', 'nokey.yaml'], { cwd: dir, env: env() });
    expect(result.code).toBe(1);
    // At the url that makes it a real Postgres (line 3, column 8), as `switchyard validate` reports it.
    expect(result.stderr).toMatch(/nokey\.yaml:3:8 secretKey: is required with a real Postgres/);
  });

  it('takes a Docplanner push, delivers it signed, prints the URLs and never a secret', async () => {
    const port = await freePort();
    writeConfig(dir, {
      port,
      database: '${env:SY_E2E_DATABASE_URL}',
      subscriptions: webhookSubscription('crm', `${subscriber.url}crm`),
    });
    const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], { cwd: dir, env: env(), port });
    await hub.ready();
    expect(await pushSlotBooked(hub.url, 'dp', 500001)).toBe(200);
    const delivered = await subscriber.waitFor(
      (r) => r.path === '/crm' && r.text.includes('"500001"'),
      15_000,
    );
    expect(delivered.type).toBe('appointment.created');
    expect(delivered.signature.valid).toBe(true);
    expect(delivered.webhookId).toMatch(/^[0-9a-f-]{36}$/);

    // The admin API answers with the configured token (and only with it).
    const denied = await fetch(`${hub.url}/v1/subscriptions`);
    expect(denied.status).toBe(401);
    const listed = await fetch(`${hub.url}/v1/subscriptions`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(listed.status).toBe(200);
    expect(JSON.stringify(await listed.json())).toContain('"managedBy":"file"');

    // The dashboard is served by the same process, and its sign-in takes the admin token.
    const page = await fetch(`${hub.url}/ui/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const signIn = await fetch(`${hub.url}/ui/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-switchyard-ui': '1' },
      body: JSON.stringify({ token: ADMIN_TOKEN }),
    });
    expect(signIn.status).toBe(204);
    expect(signIn.headers.get('set-cookie')).toMatch(/HttpOnly/i);

    expect(await hub.stop('SIGTERM')).toBe(0);
    const output = hub.stdout() + hub.stderr();
    expect(hub.stderr()).toContain(`vendor hooks:\n    dp: ${hub.url}/hooks/dp`);
    expect(hub.stderr()).toContain(`metrics: ${hub.url}/metrics`);
    expect(hub.stderr()).toContain(`dashboard: ${hub.url}/ui/`);
    expect(hub.stderr()).toContain(`curl -X POST ${hub.url}/hooks/dp`);
    expect(hub.stderr()).toContain('"x-api-key: $E2E_PUSH_KEY"');
    expect(hub.stdout()).toContain('"msg":"stopped"');
    for (const secret of [ADMIN_TOKEN, PUSH_KEY, signingSecret, signingSecret.slice(6), SECRET_KEY]) {
      expect(output).not.toContain(secret);
    }
  });

  it('events list shows the stored event; replay --dead sends dead deliveries again', async () => {
    const port = await freePort();
    writeConfig(dir, {
      port,
      database: '${env:SY_E2E_DATABASE_URL}',
      subscriptions: [
        ...webhookSubscription('crm', `${subscriber.url}crm`),
        ...webhookSubscription('flaky', `${subscriber.url}flaky`, { schedule: ['0s'] }),
      ],
    });
    subscriber.setHandler((r) => (r.path === '/flaky' ? 500 : undefined));
    const hub = spawnSwitchyard(['start', '--config', 'switchyard.yaml'], { cwd: dir, env: env(), port });
    try {
      await hub.ready();
      expect(await pushSlotBooked(hub.url, 'dp', 500002)).toBe(200);
      await subscriber.waitFor((r) => r.path === '/flaky' && r.text.includes('"500002"'), 15_000);
      // The one attempt failed: wait until the hub recorded the delivery dead.
      const deadline = Date.now() + 15_000;
      let dead = 0;
      while (Date.now() < deadline && dead === 0) {
        const res = await fetch(`${hub.url}/v1/deliveries?subscriptionId=flaky&status=dead`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        dead = ((await res.json()) as { items: unknown[] }).items.length;
        if (dead === 0) await new Promise((r) => setTimeout(r, 200));
      }
      expect(dead).toBe(1);

      const events = await runSwitchyard(
        ['events', 'list', '--config', 'switchyard.yaml', '--source', 'dp'],
        {
          cwd: dir,
          env: env(),
        },
      );
      expect(events.code).toBe(0);
      const lines = events.stdout.trim().split('\n');
      expect(lines.length).toBeGreaterThanOrEqual(1);
      expect(lines[0]).toMatch(/^\S+ {2}appointment\.created {2}dp {2}appointment\/\S+ {2}[0-9a-f-]{36}$/);

      const none = await runSwitchyard(
        ['events', 'list', '--config', 'switchyard.yaml', '--type', 'document.*'],
        { cwd: dir, env: env() },
      );
      expect(none.stdout).toBe('');

      // gates reads the config file's database like every other command.
      const gates = await runSwitchyard(['gates', 'list', '--config', 'switchyard.yaml'], {
        cwd: dir,
        env: env(),
      });
      expect(gates.code).toBe(0);
      expect(gates.stdout).toBe('no gate requests\n');
      expect(none.stderr).toContain('no events');

      subscriber.setHandler(undefined);
      const first = subscriber.requests.find((r) => r.path === '/flaky' && r.text.includes('"500002"'))!;
      const replay = await runSwitchyard(
        ['replay', '--config', 'switchyard.yaml', '--subscription', 'flaky', '--dead'],
        { cwd: dir, env: env() },
      );
      expect(replay.stderr).toBe('');
      expect(replay.code).toBe(0);
      expect(replay.stdout).toBe('queued 1 dead deliver(ies) of subscription flaky again\n');
      const again = await subscriber.waitFor(
        (r) => r.path === '/flaky' && r.response?.status === 200 && r.text.includes('"500002"'),
        15_000,
      );
      expect(again.webhookId).toBe(first.webhookId);
      expect(again.signature.valid).toBe(true);

      // One delivery, followed until it is sent.
      // The subscriber's 200 above comes before the hub records it: wait for the record.
      let succeeded: { id: string } | undefined;
      for (const until = Date.now() + 10_000; !succeeded && Date.now() < until; ) {
        const sent = await fetch(`${hub.url}/v1/deliveries?subscriptionId=flaky&status=succeeded`, {
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        [succeeded] = ((await sent.json()) as { items: { id: string }[] }).items;
        if (!succeeded) await new Promise((r) => setTimeout(r, 100));
      }
      const one = await runSwitchyard(
        ['replay', '--config', 'switchyard.yaml', '--delivery', succeeded!.id, '--force', '--wait'],
        { cwd: dir, env: env() },
      );
      expect(one.code).toBe(0);
      expect(one.stdout).toMatch(
        /^queued delivery (\S+): a replay of \S+ \(event \S+\)\ndelivery \1: delivered \(HTTP 200\)\n$/,
      );

      // Replayed once already: refused, and the message names the command line's flag, not the API's.
      const twice = await runSwitchyard(
        ['replay', '--config', 'switchyard.yaml', '--delivery', succeeded!.id],
        { cwd: dir, env: env() },
      );
      expect(twice.code).toBe(2);
      expect(twice.stderr).toMatch(/was already replayed as \S+: replay that one, or add --force to send/);
      expect(twice.stderr).not.toContain('force: true');

      const nothing = await runSwitchyard(
        ['replay', '--config', 'switchyard.yaml', '--subscription', 'flaky', '--dead'],
        { cwd: dir, env: env() },
      );
      expect(nothing.stdout).toBe('queued 0 dead deliver(ies) of subscription flaky again\n');
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\n--- hub stderr:\n${hub.stderr()}\n--- hub stdout:\n${hub.stdout().slice(-6000)}`,
      );
    } finally {
      expect(await hub.stop('SIGTERM')).toBe(0);
    }
  }, 120_000);
});
