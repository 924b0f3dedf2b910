import { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Bindings, ChildLoggerOptions, Logger } from 'pino';
import { lazyChild } from '../../logging/lazy-child.ts';

/**
 * Fastify options for the hub's request log: fastify's own two lines per request ("incoming
 * request" and "request completed", at `info`) are turned off; {@link installRequestLog} writes
 * one line per request instead, at `debug`.
 *
 * Why not at the default level: fastify's two lines cost ~0.03–0.08 ms of CPU per request (a
 * trivial route answering 0.06 ms per request without them and 0.09–0.15 ms with them, measured with
 * `inject` and pino writing to /dev/null), and under load they are most of what the hub writes
 * (36,414 lines for 13,731 requests in the run of issue 15) while saying little that the metrics
 * do not. What an
 * operator must see is still logged at `info` and above: every 5xx answer with its cause
 * (plugins/problem.ts), refused credentials counted by the rate limiter, and the pipeline's own
 * events. `logging.level: debug` brings one line per request back.
 *
 * @example
 * ```ts
 * const app = Fastify({ loggerInstance: logger, ...requestLogOptions() });
 * installRequestLog(app);
 * ```
 */
export function requestLogOptions(): {
  logController: LogController;
  childLoggerFactory: typeof lazyRequestLogger;
} {
  return {
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyRequestLogger,
  };
}

/**
 * Fastify's `childLoggerFactory`: a lazy child (logging/lazy-child.ts), or pino's child when a route
 * sets a level or serializers. Fastify makes a child per request for its `reqId` binding; at the
 * default level an answered request writes no line, so the child is usually never needed.
 */
function lazyRequestLogger(
  logger: FastifyBaseLogger,
  bindings: Bindings,
  options: ChildLoggerOptions,
): FastifyBaseLogger {
  const pinoLogger = logger as Partial<Logger>;
  if (Object.keys(options).length > 0 || typeof pinoLogger.isLevelEnabled !== 'function') {
    return logger.child(bindings, options);
  }
  return lazyChild(pinoLogger as Logger, bindings) as unknown as FastifyBaseLogger;
}

/** Logs each answered request once, at `debug`: method and redacted URL (the `req` serializer), status, time. */
export function installRequestLog(app: FastifyInstance): void {
  // Callback style, not async: no promise per request for a line that is usually not written.
  app.addHook('onResponse', (request, reply, done) => {
    // Below `debug`, request.log.debug() is a no-op: only this small object is made.
    request.log.debug(
      { req: request, res: { statusCode: reply.statusCode }, responseTime: reply.elapsedTime },
      'request completed',
    );
    done();
  });
}
