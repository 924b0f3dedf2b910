import { BlockList, isIP } from 'node:net';
import {
  ConnectorError,
  type InboundRequestHead,
  type PresentedCredentials,
  type PushCredentials,
  timingSafeEqualString,
} from '@switchyard/core';
import { type Config, DEFAULT_API_KEY_HEADER } from './config.ts';

// Configs are long-lived objects: parse each allowlist once.
const compiled = new WeakMap<readonly string[], BlockList>();

/** `::ffff:1.2.3.4` (an IPv4 client on a dual-stack socket) is the IPv4 address for allowlisting. */
function plainIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip;
}

/**
 * Builds a matcher from IPs and CIDRs. Throws `ConnectorError.permanent` on an entry that is neither,
 * so a typo does not silently open or close the door.
 *
 * @example
 * ```ts
 * ipAllowlist(['10.0.0.0/8', '2001:db8::1']).check('10.1.2.3', 'ipv4'); // true
 * ```
 */
export function ipAllowlist(entries: readonly string[]): BlockList {
  const cached = compiled.get(entries);
  if (cached) return cached;
  const list = new BlockList();
  for (const raw of entries) {
    const entry = raw.trim();
    const [address = '', prefixText] = entry.split('/');
    const family = isIP(address);
    if (family === 0)
      throw ConnectorError.permanent(`allowedSourceIps: ${JSON.stringify(raw)} is not an IP or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefixText === undefined) {
      list.addAddress(address, type);
      continue;
    }
    const prefix = Number(prefixText);
    if (!/^\d+$/.test(prefixText) || prefix > (family === 4 ? 32 : 128)) {
      throw ConnectorError.permanent(`allowedSourceIps: ${JSON.stringify(raw)} has an invalid prefix length`);
    }
    list.addSubnet(address, prefix, type);
  }
  compiled.set(entries, list);
  return list;
}

/** True when `ip` is allowed by `entries` (an empty list allows everyone). */
export function sourceIpAllowed(ip: string, entries: readonly string[] | undefined): boolean {
  if (!entries || entries.length === 0) return true;
  const address = plainIp(ip);
  const family = isIP(address);
  if (family === 0) return false;
  return ipAllowlist(entries).check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Docplanner pushes carry no signature: the defences are a static API key in an agreed header and
 * the vendor's published source IPs. At least one must be configured, or every push is refused (an
 * open hook would accept forged bookings).
 *
 * @example
 * ```ts
 * authenticate(request, { pushAuth: { apiKey: 'k3y-k3y-k3y' } }); // throws ConnectorError.auth when the header differs
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  const ips = config.allowedSourceIps ?? [];
  if (!config.pushAuth && ips.length === 0) {
    throw ConnectorError.auth('push is not configured for this instance: set pushAuth or allowedSourceIps');
  }
  if (!sourceIpAllowed(request.sourceIp, ips)) {
    throw ConnectorError.auth('the request does not come from an allowed Docplanner source IP', {
      sourceIp: request.sourceIp,
    });
  }
  if (config.pushAuth) {
    const header = (config.pushAuth.headerName ?? DEFAULT_API_KEY_HEADER).toLowerCase();
    const presented = request.headers[header];
    if (presented === undefined || presented === '')
      throw ConnectorError.auth(`the ${header} header is missing`);
    if (!timingSafeEqualString(presented, config.pushAuth.apiKey)) {
      throw ConnectorError.auth(`the ${header} header does not match the configured API key`);
    }
  }
}

/**
 * Where a Docplanner push carries credentials: the API-key header the instance names
 * (`pushAuth.headerName`, default `x-api-key`). The source-IP allowlist is not a secret.
 *
 * @example
 * ```ts
 * credentials({ pushAuth: { headerName: 'X-Docplanner-Auth', apiKey: 'k3y' } }); // { headers: ['x-docplanner-auth'] }
 * ```
 */
export function credentials(config: Config): PushCredentials {
  return { headers: [(config.pushAuth?.headerName ?? DEFAULT_API_KEY_HEADER).toLowerCase()] };
}

/**
 * What Docplanner presents on a push: the instance's API key in its header (nothing when the
 * instance trusts source addresses alone). `switchyard push` sends it.
 *
 * @example
 * ```ts
 * sign(request, { pushAuth: { apiKey: 'k3y-0123456789' } }); // { headers: { 'x-api-key': 'k3y-0123456789' } }
 * ```
 */
export function sign(_request: unknown, config: Config): PresentedCredentials {
  if (!config.pushAuth) return {};
  return {
    headers: {
      [(config.pushAuth.headerName ?? DEFAULT_API_KEY_HEADER).toLowerCase()]: config.pushAuth.apiKey,
    },
  };
}
