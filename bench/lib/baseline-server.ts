/**
 * Child-process entry for the ingest baseline: a bare fastify route that does one INSERT per
 * request through a pg Pool of 10 and answers 200. Nothing is acknowledged before the row is
 * committed, so this is the floor for a durable acknowledgement on this machine.
 */
import type { AddressInfo } from 'node:net';
import { serveChild } from './child.ts';
import { fastify, pg } from './deps.ts';

const databaseUrl = process.env.BENCH_DATABASE_URL!;
const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
const app = fastify({ logger: false });
app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
app.post('/hooks/:instance', async (request, reply) => {
  await pool.query('insert into bench_ack (instance, body) values ($1, $2)', [
    (request.params as { instance: string }).instance,
    request.body as string,
  ]);
  return reply.code(200).send({ status: 'accepted' });
});

serveChild(
  {
    async start() {
      await pool.query(
        'create table if not exists bench_ack (id bigserial primary key, instance text not null, body jsonb not null, received_at timestamptz not null default now())',
      );
      await app.listen({ port: 0, host: '127.0.0.1' });
      return { port: (app.server.address() as AddressInfo).port };
    },
    async count() {
      return Number((await pool.query('select count(*) as n from bench_ack')).rows[0].n);
    },
  },
  async () => {
    await app.close();
    await pool.end();
  },
);
