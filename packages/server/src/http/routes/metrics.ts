import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../deps.ts';

/** `GET /metrics`: Prometheus text from the app's own registry. */
export async function metricsRoutes(app: FastifyInstance, { metrics }: RouteDeps): Promise<void> {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['health'],
        summary: 'Prometheus metrics (text exposition format)',
        response: { 200: { type: 'string' } },
      },
    },
    async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text);
    },
  );
}
