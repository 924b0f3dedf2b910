import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../admin/http.ts';
import { reportDatabaseUnavailable } from '../../storage/unavailable.ts';
import type { RouteDeps } from '../deps.ts';
import { probeDatabaseWithin } from '../hub-stats.ts';

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
    {
      config: { trace: false },
      schema: { tags: ['health'], summary: 'Liveness: the process is up', response: { 200: status } },
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: { trace: false },
      schema: {
        tags: ['health'],
        summary: 'Readiness: the database and queues are reachable (503 problem when not)',
        response: { 200: status },
      },
    },
    async (request) => {
      try {
        await probeDatabaseWithin(hub.host.db, READY_TIMEOUT_MS);
      } catch (error) {
        // Probes come every few seconds from every load balancer: reported as every request the
        // outage refuses is, once per 30 s (two warnings with a stack per probe before).
        reportDatabaseUnavailable(request.log, error, 'the readiness probe answers 503');
        const readOnly = (error as { code?: unknown } | null)?.code === '25006';
        throw new HttpError(
          'SY_HTTP_NOT_READY',
          readOnly ? 'the database is read-only: no push can be stored' : 'the database does not answer',
          { headers: { 'retry-after': '5' } },
        );
      }
      return { status: 'ready' };
    },
  );
}
