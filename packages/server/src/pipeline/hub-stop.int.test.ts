import { useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { expect, it } from 'vitest';
import { makeHub } from './fixtures.test-support.ts';

const database = useTestDatabase();

/** What a connection gets when its Postgres shuts down (a fast shutdown, as the embedded one's stop). */
function terminated(): Error {
  return Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
}

// Fresh-clone CI: a clean stop on the embedded Postgres logged this as a warning ("the database is
// unavailable: pg-boss … retries") between "stopping" and "stopped", from a pg-boss connection the
// Postgres shutdown terminated after pg-boss had stopped.
it("logs pg-boss's errors after its stop at debug, not as an outage it retries", async () => {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  const hub = await makeHub(database.url(), { logger, options: { queue: true } });
  await hub.start();
  const boss = hub.host.queue!;
  boss.emit('error', terminated());
  const warned = lines.filter((line) => line.level === 40);
  expect(warned.map((line) => line.msg)).toEqual([
    'the database is unavailable: pg-boss (schedules, the gate hand-off, commands) retries (further occurrences within 30 s are logged at debug)',
  ]);

  await hub.stop();
  lines.length = 0;
  boss.emit('error', terminated());
  boss.emit('error', new Error('something else'));
  expect(lines.filter((line) => line.level >= 40)).toEqual([]);
  expect(lines.filter((line) => line.msg.startsWith('pg-boss')).map((line) => line.msg)).toEqual([
    'pg-boss error after its stop (a connection it was closing)',
    'pg-boss error after its stop (a connection it was closing)',
  ]);
});
