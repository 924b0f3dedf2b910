import { useTestDatabase } from '@switchyard/testing';
import { PgBoss } from 'pg-boss';
import { afterAll, expect, it } from 'vitest';
import { BOSS_TIMERS, bossSession } from './boss.ts';

const database = useTestDatabase();
let boss: PgBoss | undefined;

afterAll(async () => {
  await boss?.stop({ graceful: false });
});

it("runs pg-boss's sessions without JIT, as the hub's (bossSession)", async () => {
  boss = new PgBoss({ ...bossSession(database.url()), schema: 'switchyard_queue', max: 1, ...BOSS_TIMERS });
  boss.on('error', () => {});
  await boss.start();
  const r = (await boss.getDb().executeSql(`select current_setting('jit') as jit`)) as {
    rows: { jit: string }[];
  };
  expect(r.rows[0]?.jit).toBe('off');
});
