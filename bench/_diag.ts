import { pg } from './lib/deps.ts';
import { startChild } from './lib/child.ts';
import { createTestDatabase } from '../packages/testing/src/index.ts';
import { cannon, hookUrl } from './lib/load.ts';
import { startFastSubscriber } from './lib/subscriber.ts';
const db = await createTestDatabase({ prefix: 'sy_bench_' });
const child = await startChild(new URL('./lib/hub-process.ts', import.meta.url), { BENCH_DATABASE_URL: db.url }, ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']);
const { port } = await child.call<{ port: number }>('start', {});
const sub = await startFastSubscriber();
await child.call('subscribe', sub.url, 1);
const c = new pg.Client({ connectionString: db.url }); await c.connect();
const t0 = performance.now();
const p = cannon({ url: hookUrl(port), amount: 1000, tag: 5 });
for (let i = 0; i < 12; i++) {
  await new Promise(r => setTimeout(r, 1000));
  const a = (await c.query(`select status, count(*) from switchyard.inbound_messages group by 1`)).rows;
  const b = (await c.query(`select status, count(*) from switchyard.deliveries group by 1`)).rows;
  console.log(((performance.now()-t0)/1000).toFixed(1), JSON.stringify(a), JSON.stringify(b), sub.count);
  if (sub.count >= 1000) break;
}
await p; await c.end(); await child.stop(); await sub.close(); await db.drop();
