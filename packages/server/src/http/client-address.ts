import type { FastifyRequest } from 'fastify';

/** `a.b.c.d:port` */
const IPV4_WITH_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
/** `[v6]` or `[v6]:port` */
const BRACKETED = /^\[([0-9A-Fa-f:.]+(?:%[^\]]+)?)\](?::\d{1,5})?$/;

/**
 * The client address of a request as the hub judges it (a connector's `sourceIp`, the
 * auth-failure limiter): `request.ip` without the port some proxies write into `X-Forwarded-For`.
 * Azure Application Gateway, for one, writes `203.0.113.5:51234`, which `trustProxy` takes as it
 * is: a Docplanner `allowedSourceIps` then refused every push (no IP), and the limiter counted each
 * new source port as a new client (no bound at all). Anything else is returned as it is.
 *
 * @example
 * ```ts
 * clientAddress({ ip: '203.0.113.5:51234' }); // '203.0.113.5'
 * clientAddress({ ip: '[2001:db8::1]:443' }); // '2001:db8::1'
 * clientAddress({ ip: '2001:db8::1' });       // '2001:db8::1'
 * ```
 */
export function clientAddress(request: Pick<FastifyRequest, 'ip'>): string {
  const ip = request.ip;
  // A socket's own address (most requests) has neither: nothing to match.
  if (!ip.includes(':') || (!ip.includes('[') && ip.indexOf(':') !== ip.lastIndexOf(':'))) return ip;
  return IPV4_WITH_PORT.exec(ip)?.[1] ?? BRACKETED.exec(ip)?.[1] ?? ip;
}
