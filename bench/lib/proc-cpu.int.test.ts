/**
 * The bench's /proc CPU meter against a real Postgres: it finds the backends of one database, reads
 * their CPU, and charges it to the stage of the statements they ran.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../packages/testing/src/index.ts';
import { pg } from './deps.ts';
import { CpuMeter, cpuMs, machineCpuMs, msPerTick, stageOf } from './proc-cpu.ts';

const db = useTestDatabase();

describe('machineCpuMs', () => {
  it('reads busy, total and stolen time from the first line of /proc/stat (guest time is in user already)', () => {
    // user nice system idle iowait irq softirq steal guest guest_nice
    const stat = 'cpu  600 10 200 1000 40 0 30 120 50 0\ncpu0 300 5 100 500 20 0 15 60 25 0\n';
    const tick = msPerTick();
    expect(machineCpuMs(stat)).toEqual({ busy: 960 * tick, total: 2000 * tick, steal: 120 * tick });
    const here = machineCpuMs();
    expect(here.steal).toBeGreaterThanOrEqual(0);
    expect(here.busy).toBeLessThanOrEqual(here.total);
  });
});

describe('stageOf', () => {
  it('charges the hub statements to the stage that sends them', () => {
    // Statement shapes from the inbound and deliveries stores of packages/server/src.
    const queries = ['inbound', 'deliveries']
      .map((concept) =>
        readFileSync(new URL(`../../packages/server/src/${concept}/store.ts`, import.meta.url), 'utf8'),
      )
      .join('\n');
    expect(queries).toContain('insert into switchyard.inbound_messages');
    expect(queries).toContain('switchyard.claimable_inbound_runs(');
    expect(queries).toContain('switchyard.claimable_deliveries(');
    expect(stageOf('insert into switchyard.inbound_messages (id, instance_id) values ($1, $2)')).toBe(
      'ingest',
    );
    expect(stageOf('with v as (select 1) insert into switchyard.inbound_bodies (id, body) select 1')).toBe(
      'ingest',
    );
    // The ingest statement as pg_stat_activity keeps it: its first kilobyte, before the insert.
    expect(queries).toContain('with inbound_input as (');
    expect(
      stageOf('/* plan-stable */ with inbound_input as ( select * from unnest($1::uuid[], $2::text[]'),
    ).toBe('ingest');
    // The normalize commit as pg_stat_activity keeps it: its alias CTEs before its writes.
    const events = readFileSync(
      new URL('../../packages/server/src/events/store.ts', import.meta.url),
      'utf8',
    );
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the store's source text, quoted as it is written
    expect(events).toContain('sql`${PLAN_STABLE}with input as (');
    expect(
      stageOf(
        '/* plan-stable */ with input as ( select * from unnest($1::uuid[], $2::text[], alias_input as (',
      ),
    ).toBe('normalize');
    expect(
      stageOf(
        'update switchyard.inbound_messages m set locked_until = now() from switchyard.claimable_inbound_runs($1::integer, $2::integer)',
      ),
    ).toBe('normalize');
    // The normalize commit also fans out into deliveries: still normalize.
    expect(
      stageOf(
        'with f as (update switchyard.inbound_messages m set status = v.status), e as (insert into switchyard.events (sequence) select 1) insert into switchyard.deliveries (id) select 1',
      ),
    ).toBe('normalize');
    expect(stageOf('update switchyard.gate_requests set matched_at = now() where id = $1')).toBe('normalize');
    expect(stageOf('select id, timeout_ms from switchyard.claimable_deliveries($1::integer)')).toBe(
      'deliver',
    );
    expect(stageOf('insert into switchyard.delivery_attempts (delivery_id) values ($1)')).toBe('deliver');
    expect(stageOf('SELECT * FROM pgboss.job WHERE name = $1')).toBe('pg-boss');
    expect(stageOf('COMMIT')).toBe('other');
    expect(stageOf('LISTEN switchyard_deliver')).toBe('other');
  });
});

describe('CpuMeter', () => {
  it('reads this process and the backends of one database from /proc', { timeout: 60_000 }, async () => {
    expect(cpuMs(process.pid)).toBeGreaterThanOrEqual(0);
    expect(cpuMs(2 ** 22 + 7)).toBeUndefined();
    const name = new URL(db.url()).pathname.slice(1);
    const admin = new URL(db.url());
    admin.pathname = '/postgres';
    const meter = new CpuMeter(admin.toString(), name, () => [process.pid]);
    await meter.start();
    // A backend opened inside the window, busy in a statement the meter will see.
    const client = new pg.Client({ connectionString: db.url() });
    await client.connect();
    try {
      await client.query('create table switchyard_bench_probe (n int)');
      for (let i = 0; i < 5; i++) {
        await client.query(
          'insert into switchyard_bench_probe select g from generate_series(1, 50000) g where md5(g::text) > $1',
          [''],
        );
      }
      const reading = await meter.stop();
      expect(reading.backends).toBeGreaterThanOrEqual(1);
      expect(reading.backendsMs).toBeGreaterThan(0);
      expect(reading.byStatement[0]![0]).toContain('switchyard_bench_probe');
      expect(Object.values(reading.byStage).reduce((a, b) => a + b, 0)).toBeCloseTo(reading.backendsMs, 6);
      expect(reading.processMs).toBeGreaterThanOrEqual(0);
    } finally {
      await client.end();
    }
  });
});
