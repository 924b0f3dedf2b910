/**
 * What a request looks like in the log. Fastify's default `req` serializer writes the URL as
 * received, and some vendors put the credential in it (`/hooks/{instance}/{key}`, `?token=`): for
 * instances created through the admin API the value scrubber does not know that key, so the path
 * itself must not be logged. The redaction is the request span's too (`url.path`): one function,
 * kept with the spans because telemetry imports nothing of the hub.
 */
import { redactUrl } from '../telemetry/fastify.ts';

export { redactUrl };

interface RequestLike {
  method?: string;
  url?: string;
  host?: string;
  ip?: string;
  socket?: { remotePort?: number } | null;
}

/**
 * pino `serializers.req` for fastify request logs: method, redacted URL, host and client address.
 *
 * @example
 * ```ts
 * pino({ serializers: { req: requestSerializer } });
 * ```
 */
export function requestSerializer(req: RequestLike & { raw?: unknown }): Record<string, unknown> {
  // A plain object someone logged as `req` (not a fastify request): keep it, only the URL changes.
  if (typeof req !== 'object' || req === null || req.raw === undefined) {
    return typeof req?.url === 'string'
      ? { ...req, url: redactUrl(req.url) }
      : (req as Record<string, unknown>);
  }
  return {
    method: req.method,
    url: typeof req.url === 'string' ? redactUrl(req.url) : req.url,
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}
