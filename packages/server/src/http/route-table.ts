import type { FastifySchema, RouteOptions } from 'fastify';

/**
 * How a route is authenticated (route `config.auth`; `admin` when absent). `command`: the admin
 * token or a subscription's command credential (commands/http.ts).
 */
export type RouteAuth = 'admin' | 'subscription' | 'command' | 'none';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; default `admin` under `/v1`, `none` elsewhere. */
    auth?: RouteAuth;
  }
  interface FastifySchema {
    /** OpenAPI operation summary. */
    summary?: string;
    description?: string;
    /** OpenAPI tags. */
    tags?: string[];
    /** OpenAPI: problem answers worth naming beyond `default`, by status, with what they mean there. */
    problems?: Record<number, string>;
    /** OpenAPI: headers of an answer, a success or one of `problems`, by status (OpenAPI header objects by name). */
    responseHeaders?: Record<number, Record<string, { description: string; schema: unknown }>>;
    /**
     * OpenAPI: the request body as the document describes it, when it says more than `body`, which
     * validates (e.g. each command type's data: a body that fails it is refused by the route's own
     * check, with its registered code, rather than by the generic body validation).
     */
    documentedBody?: Record<string, unknown>;
    /** OpenAPI: named schemas the route's documented schemas `$ref` (`#/components/schemas/<name>`). */
    components?: Record<string, unknown>;
  }
}

/** One registered route, as the OpenAPI builder, the 405 check and the tests see it. */
export interface RouteEntry {
  method: string;
  /** The fastify path, e.g. `/v1/subscriptions/:id`. */
  url: string;
  auth: RouteAuth;
  schema: FastifySchema | undefined;
  matcher: RegExp;
}

function toMatcher(url: string): RegExp {
  const pattern = url
    .split('/')
    .map((segment) => {
      if (segment === '*') return '.*';
      if (segment.startsWith(':')) return '[^/]+';
      return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('/');
  return new RegExp(`^${pattern}/?$`);
}

/**
 * Every route of the app, collected by an `onRoute` hook (HEAD twins left out). Feeds the OpenAPI
 * document, the 405 answers and the test that proves every admin route needs the token.
 */
export class RouteTable {
  readonly routes: RouteEntry[] = [];

  add(options: RouteOptions): void {
    const methods = Array.isArray(options.method) ? options.method : [options.method];
    for (const method of methods) {
      if (method === 'HEAD') continue;
      this.routes.push({
        method,
        url: options.url,
        auth: options.config?.auth ?? (options.url.startsWith('/v1/') ? 'admin' : 'none'),
        schema: options.schema,
        matcher: toMatcher(options.url),
      });
    }
  }

  /** Methods registered for paths that match `path` (a concrete request path, no query). */
  methodsFor(path: string): string[] {
    return [...new Set(this.routes.filter((r) => r.matcher.test(path)).map((r) => r.method))];
  }
}
