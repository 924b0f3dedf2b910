import { run } from './ingest.ts';
const r = await run({ quick: true, adminUrl: process.env.DATABASE_URL!, log: (m) => console.error(m) });
console.log(JSON.stringify(r, null, 1));
