const name = process.argv[2]!;
const { run } = await import(`./${name}.ts`);
const r = await run({ quick: true, adminUrl: process.env.DATABASE_URL!, log: (m: string) => console.error(m) });
console.log(JSON.stringify(r, null, 1));
