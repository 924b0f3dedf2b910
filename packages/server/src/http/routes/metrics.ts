import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../deps.ts';
import { metricsExposition } from '../metrics-registry.ts';

/**
 * `GET /metrics`: the app's own registry, as Prometheus text, or as OpenMetrics with exemplars when
 * the scraper's `Accept` asks for it (`metricsExposition`).
 */
export async function metricsRoutes(app: FastifyInstance, { metrics }: RouteDeps): Promise<void> {
  app.get(
    '/metrics',
    {
      config: { trace: false },
      schema: {
        tags: ['health'],
        summary:
          'Prometheus metrics: the text exposition format, or OpenMetrics with trace exemplars when Accept names application/openmetrics-text',
        response: { 200: { type: 'string' } },
      },
    },
    async (request, reply) => {
      const { contentType, text } = await metricsExposition(metrics.registry, request.headers.accept);
      return reply.type(contentType).send(text);
    },
  );
}
