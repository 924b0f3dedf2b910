import { pg } from './lib/deps.ts';
import { startChild } from './lib/child.ts';
import { createTestDatabase } from '../packages/testing/src/index.ts';
import { cannon, hookUrl } from './lib/load.ts';
const db = await createTestDatabase({ prefix: 'sy_bench_' });
const child = await startChild(new URL('./lib/hub-process.ts', import.meta.url), { BENCH_DATABASE_URL: db.url });
const { port } = await child.call<{ port: number }>('start', { workers: false });
await cannon({ url: hookUrl(port), amount: 1000, tag: 5 });
const c = new pg.Client({ connectionString: db.url }); await c.connect();
await c.query('begin');
const r = await c.query(`explain analyze update switchyard.inbound_messages m set locked_until = now() + make_interval(secs => 300),
          lock_token = gen_random_uuid(), attempts = m.attempts + 1
        from (select c.id from switchyard.inbound_messages c
              where c.status = 'received' and c.next_attempt_at <= now()
                and (c.locked_until is null or c.locked_until < now())
                and (c.ordering_key is null or not exists (
                  select 1 from switchyard.inbound_messages p
                  where p.status = 'received' and p.instance_id = c.instance_id
                    and p.ordering_key = c.ordering_key and p.seq < c.seq))
              order by c.seq limit 1 for update skip locked) due
        where m.id = due.id returning m.id`);
console.log(r.rows.map((x: any) => x['QUERY PLAN']).join('\n'));
await c.query('rollback');
await c.end(); await child.stop(); await db.drop();
