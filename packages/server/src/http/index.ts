/**
 * The Switchyard HTTP layer: `buildApp()` over a hub, its metrics and its error type.
 *
 * @example
 * ```ts
 * import { buildApp } from './http/index.ts';
 * const app = await buildApp({ hub, adminToken, bodyLimit: 1 << 20, trustedProxies: [], logger });
 * await app.listen({ port: 8080, host: '0.0.0.0' });
 * ```
 */

export { HttpError, type HttpErrorCode, type ValidationIssue } from '../admin/http.ts';
export { type BuildAppOptions, buildApp, type SwitchyardApp, serverOptions } from './app.ts';
export type { ProblemDocument } from './errors.ts';
export { createMetrics, type HttpMetrics } from './metrics-registry.ts';
export { buildOpenApi } from './routes/openapi.ts';
