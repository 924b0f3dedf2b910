import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../admin/http.ts';
import type { RouteDeps } from '../deps.ts';
import { probeDatabase } from '../hub-stats.ts';

const READY_TIMEOUT_MS = 3000;

const status = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: { status: { type: 'string' } },
};

/** `/healthz`: the process answers. `/readyz`: the database (and so the work queues) answers too. */
export async function healthRoutes(app: FastifyInstance, { hub }: RouteDeps): Promise<void> {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Liveness: the process is up', response: { 200: status } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: the database and queues are reachable (503 problem when not)',
        response: { 200: status },
      },
    },
    async (request) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          probeDatabase(hub.host.db),
          new Promise((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no answer in ${READY_TIMEOUT_MS} ms`)),
              READY_TIMEOUT_MS,
            );
          }),
        ]);
      } catch (error) {
        request.log.warn({ err: error }, 'readiness probe failed');
        throw new HttpError('SY_HTTP_NOT_READY', 'the database does not answer', {
          headers: { 'retry-after': '5' },
        });
      } finally {
        clearTimeout(timer);
      }
      return { status: 'ready' };
    },
  );
}
