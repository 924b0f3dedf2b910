// biome-ignore-all lint/suspicious/noTemplateCurlyInString: config text uses ${env:...} references on purpose.
/**
 * The commands subsystem of a started hub process while its database refuses connections
 * (`ALTER DATABASE … ALLOW_CONNECTIONS false`, the sessions terminated): the command sweep fails
 * every interval, and says so once per 30 s as the worker loops do, not a warning with a stack at
 * every sweep (found by a fault-injection audit: Postgres stopped for 10 s, `commands.sweepInterval:
 * 1s`, ten stacks per process).
 */
import { testPostgresAdminUrl, useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { shippedConnectors } from '../connectors.ts';
import { type HubProcess, startHubProcess } from '../runtime/process.ts';
import { setConnectionsAllowed } from '../storage/database.test-support.ts';

const db = useTestDatabase();
const lines: { level: number; msg: string }[] = [];
let admin: pg.Client;
let hub: HubProcess;

const allowConnections = (allow: boolean) => setConnectionsAllowed(admin, db.name(), allow);

beforeAll(async () => {
  admin = new pg.Client({ connectionString: testPostgresAdminUrl() });
  await admin.connect();
  const loaded = parseConfig(
    [
      'version: 1',
      'server:',
      '  host: 127.0.0.1',
      '  port: 0',
      'database:',
      '  url: ${env:T_DB}',
      'secretKey: t-commands-outage-secret-key-0123',
      '',
    ].join('\n'),
    { file: 'commands-outage.yaml', connectors: shippedConnectors, env: { T_DB: db.url() } },
  );
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  hub = await startHubProcess(loaded.config, {
    io: { stderr: { write: () => true }, env: {}, cwd: process.cwd() },
    logger: pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) }),
    pipeline: { retention: { cron: false } },
    commands: { sweepIntervalMs: 50, retentionCron: false },
  });
});

afterAll(async () => {
  // The database is dropped after this file: it must accept the drop's connection.
  await allowConnections(true).catch(() => {});
  await hub?.stop();
  await admin?.end();
});

it('says once per 30 s that the command sweep waits for the database, not a warning per sweep', {
  timeout: 60_000,
}, async () => {
  await allowConnections(false);
  const from = lines.length;
  const sweeps = () =>
    lines
      .slice(from)
      .filter((l) => l.msg === 'command sweep failed' || l.msg.includes('the command sweep runs again'));
  // Five failed sweeps, however they were logged.
  while (sweeps().length < 5) await new Promise((resolve) => setTimeout(resolve, 50));
  // Before: five warnings 'command sweep failed', each with the error's stack.
  expect(sweeps().filter((l) => l.level >= 40).length).toBeLessThanOrEqual(1);
  expect(sweeps().filter((l) => l.msg === 'command sweep failed')).toEqual([]);
  // Nor do the LISTEN connection and pg-boss's connections, cut by the same outage, say it once
  // each with a stack (3 to 12 such warnings per process per blip before).
  expect(
    lines
      .slice(from)
      .filter(
        (l) => l.msg === 'pg-boss error' || l.msg === 'LISTEN connection lost; polling until it is back',
      ),
  ).toEqual([]);
  await allowConnections(true);
});
