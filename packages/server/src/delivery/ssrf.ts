/**
 * Server-side request forgery guard for subscriber URLs. A subscription URL is attacker-controlled
 * input as far as the hub is concerned: without this check it could make the hub POST to its own
 * admin API, a database on the private network, or the cloud metadata service.
 *
 * DNS rebinding: a name can resolve to a public address when checked and to 127.0.0.1 a moment
 * later. {@link checkDestination} returns the addresses it checked, and `postWebhook` connects to
 * exactly those (its `lookup` is pinned), so the check and the connection see the same address.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIPv6, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** What an address is, as far as the guard cares. `public` is the only class always allowed. */
export type AddressClass =
  | 'public'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'reserved';

/** Resolves a host name to every address it has (IPv4 and IPv6). */
export type HostLookup = (host: string) => Promise<string[]>;

/** Options of {@link checkDestination}. */
export interface DestinationPolicy {
  /**
   * Allow private networks: RFC 1918 (10/8, 172.16/12, 192.168/16), unique local fc00::/7,
   * site-local fec0::/10, carrier-grade NAT 100.64/10, benchmarking 198.18/15, and link-local
   * 169.254/16, fe80::/10. Cloud metadata addresses stay refused.
   */
  allowPrivate?: boolean;
  /** Allow loopback: 127/8 and ::1 (and `localhost`, which resolves there). Tests set this. */
  allowLoopback?: boolean;
  /** DNS resolution; default `dns.promises.lookup(host, { all: true })`. */
  lookup?: HostLookup;
}

/** The result of {@link checkDestination}. */
export type DestinationCheck =
  | { ok: true; addresses: string[] }
  | {
      ok: false;
      reason: string;
      /**
       * `invalid_url`: not an absolute http(s) URL, or carries credentials; `refused`: an address
       * (or the name) is not allowed; `dns`: the name did not resolve (often temporary).
       */
      kind: 'invalid_url' | 'refused' | 'dns';
    };

const cidr = (text: string): [Address, number] => ipaddr.parseCIDR(text);

// Order matters only for naming: the first matching class wins, so specific ranges come first.
const RANGES: ReadonlyArray<[AddressClass, [Address, number]]> = [
  // Cloud credential endpoints: refused even with allowPrivateAddresses, since they hand out the
  // host's cloud credentials to whoever asks from inside it.
  ['metadata', cidr('169.254.169.254/32')], // AWS, GCP, Azure, OCI and others (IPv4 IMDS)
  ['metadata', cidr('169.254.170.2/32')], // AWS ECS task metadata and credentials
  ['metadata', cidr('169.254.170.23/32')], // AWS EKS Pod Identity agent (credentials)
  ['metadata', cidr('100.100.100.200/32')], // Alibaba Cloud
  ['metadata', cidr('fd00:ec2::254/128')], // AWS EC2 IMDS over IPv6
  ['metadata', cidr('fd00:ec2::23/128')], // AWS EKS Pod Identity agent over IPv6
  ['metadata', cidr('fd20:ce::254/128')], // GCP metadata server over IPv6
  ['unspecified', cidr('0.0.0.0/8')],
  ['unspecified', cidr('::/128')],
  ['loopback', cidr('127.0.0.0/8')],
  ['loopback', cidr('::1/128')],
  ['private', cidr('10.0.0.0/8')],
  ['private', cidr('172.16.0.0/12')],
  ['private', cidr('192.168.0.0/16')],
  ['private', cidr('100.64.0.0/10')],
  ['private', cidr('198.18.0.0/15')],
  ['private', cidr('fc00::/7')],
  ['private', cidr('fec0::/10')],
  ['link_local', cidr('169.254.0.0/16')],
  ['link_local', cidr('fe80::/10')],
  ['multicast', cidr('224.0.0.0/4')],
  ['multicast', cidr('ff00::/8')],
  ['reserved', cidr('255.255.255.255/32')],
  ['reserved', cidr('240.0.0.0/4')],
  ['reserved', cidr('192.0.0.0/24')],
  ['reserved', cidr('192.0.2.0/24')],
  ['reserved', cidr('198.51.100.0/24')],
  ['reserved', cidr('203.0.113.0/24')],
  ['reserved', cidr('2001:db8::/32')],
  ['reserved', cidr('100::/64')],
];

// IPv6 forms that carry an IPv4 address a router may reach: classify the embedded address.
const IPV4_MAPPED = cidr('::ffff:0:0/96');
const IPV4_COMPATIBLE = cidr('::/96');
const NAT64 = cidr('64:ff9b::/96');
const NAT64_LOCAL = cidr('64:ff9b:1::/48');
const SIX_TO_FOUR = cidr('2002::/16');

/** Names that reach a metadata service whatever DNS says. */
const METADATA_HOSTS = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata',
  'instance-data',
  'instance-data.ec2.internal',
]);

function embeddedIPv4(address: ipaddr.IPv6): ipaddr.IPv4 | undefined {
  const p = address.parts;
  const low = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  if (address.match(IPV4_MAPPED) || address.match(NAT64) || address.match(NAT64_LOCAL))
    return low(p[6]!, p[7]!);
  // ::/96 also holds :: and ::1, which are classified by their own ranges first.
  if (address.match(IPV4_COMPATIBLE) && !(p[6] === 0 && p[7]! <= 1)) return low(p[6]!, p[7]!);
  if (address.match(SIX_TO_FOUR)) return low(p[1]!, p[2]!);
  return undefined;
}

/**
 * Classifies one IP address (IPv4 or IPv6 text; IPv4-mapped, IPv4-compatible, NAT64 and 6to4 IPv6
 * forms are classified by the IPv4 address they embed). Throws `TypeError` for text that is not an
 * IP address.
 *
 * @example
 * ```ts
 * classifyAddress('10.1.2.3');              // 'private'
 * classifyAddress('::ffff:127.0.0.1');      // 'loopback'
 * classifyAddress('169.254.169.254');       // 'metadata'
 * classifyAddress('93.184.215.14');         // 'public'
 * ```
 */
export function classifyAddress(text: string): AddressClass {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (!ipaddr.isValid(bare)) throw new TypeError(`not an IP address: ${JSON.stringify(bare.slice(0, 64))}`);
  const address = ipaddr.parse(bare);
  if (address.kind() === 'ipv6') {
    const inner = embeddedIPv4(address as ipaddr.IPv6);
    if (inner) return classifyParsed(inner);
  }
  return classifyParsed(address);
}

function classifyParsed(address: Address): AddressClass {
  for (const [name, range] of RANGES) {
    if (address.kind() === range[0].kind() && address.match(range)) return name;
  }
  return 'public';
}

function allowed(kind: AddressClass, policy: DestinationPolicy): boolean {
  if (kind === 'public') return true;
  if (kind === 'loopback') return policy.allowLoopback === true;
  if (kind === 'private' || kind === 'link_local') return policy.allowPrivate === true;
  return false;
}

const defaultLookup: HostLookup = async (host) =>
  (await dnsLookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

/** `URL.hostname` keeps IPv6 brackets and a trailing dot; neither changes the destination. */
function bareHost(hostname: string): string {
  const unbracketed = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed;
}

/** Why {@link checkDestination} refuses `address` (what `host` is or resolves to), or undefined. */
function addressRefusal(address: string, host: string, policy: DestinationPolicy): string | undefined {
  let kind: AddressClass;
  try {
    kind = classifyAddress(address);
  } catch {
    return `${host} resolved to something that is not an IP address`;
  }
  if (allowed(kind, policy)) return undefined;
  const label = kind.replace('_', '-');
  const via = address === host ? '' : ` (${host} resolves to ${address})`;
  // Named as the operator writes it: the subscription setting behind allowPrivate/allowLoopback.
  const hint =
    kind === 'loopback' || allowed(kind, { allowPrivate: true })
      ? '; a subscription with allowPrivateAddresses: true may use it'
      : '';
  return `${label} address ${address} is not allowed${via}${hint}`;
}

/**
 * Where a connector's vendor calls may go (delivery/vendor-http.ts): private and loopback
 * addresses too (vendors' on-premises APIs and the simulators live there), so what stays refused
 * is what no policy allows (cloud metadata, unspecified, multicast, reserved).
 */
export const VENDOR_DESTINATIONS: DestinationPolicy = { allowPrivate: true, allowLoopback: true };

/**
 * Why {@link checkDestination} would refuse `url` under `policy` whatever DNS answers: a cloud
 * metadata name, or an IP literal of a class the policy refuses. Undefined otherwise, also for a
 * name (resolved only when called: what it resolves to may change) and for text that is no http(s)
 * URL (its schema's to refuse). Lets a setting the hub will never call be refused when it is saved.
 *
 * @example
 * ```ts
 * refusedWithoutLookup('http://169.254.169.254/latest', VENDOR_DESTINATIONS); // 'metadata address 169.254.169.254 is not allowed'
 * refusedWithoutLookup('http://10.0.0.5/api', VENDOR_DESTINATIONS);           // undefined
 * ```
 */
export function refusedWithoutLookup(url: string, policy: DestinationPolicy): string | undefined {
  const check = checkBeforeLookup(url, policy);
  return 'ok' in check && !check.ok && check.kind === 'refused' ? check.reason : undefined;
}

/**
 * What {@link checkDestination} decides before any DNS lookup: the URL's form, a metadata name, an
 * IP literal's class; or the name to resolve.
 */
function checkBeforeLookup(url: string, policy: DestinationPolicy): DestinationCheck | { name: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, kind: 'invalid_url', reason: 'not an absolute URL' };
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return {
      ok: false,
      kind: 'invalid_url',
      reason: `scheme ${parsed.protocol} is not allowed (http or https only)`,
    };
  }
  if (parsed.username !== '' || parsed.password !== '') {
    return {
      ok: false,
      kind: 'invalid_url',
      reason: 'URLs with credentials (user:password@) are not allowed',
    };
  }
  const host = bareHost(parsed.hostname).toLowerCase();
  if (host === '') return { ok: false, kind: 'invalid_url', reason: 'the URL has no host' };
  if (METADATA_HOSTS.has(host)) {
    return { ok: false, kind: 'refused', reason: `${host} is a cloud metadata endpoint` };
  }
  if (!ipaddr.isValid(host)) return { name: host };
  const reason = addressRefusal(host, host, policy);
  return reason === undefined ? { ok: true, addresses: [host] } : { ok: false, kind: 'refused', reason };
}

/**
 * Decides whether the hub may POST to `url`. Only absolute `http:`/`https:` URLs without
 * credentials pass. An IP literal is classified directly; a name is resolved (every address) and
 * refused when ANY of its addresses is refused, so a name cannot mix a public address with an
 * internal one. Refused: loopback (unless `allowLoopback`), private, CGNAT and link-local (unless
 * `allowPrivate`), and always: cloud metadata (addresses and well-known names), unspecified,
 * multicast, broadcast and reserved/documentation ranges. IPv4-mapped IPv6 forms count as the IPv4
 * address they carry. Never throws; the reason names the offending address, not the URL (which may
 * carry tokens in its query).
 *
 * Connect only to the returned `addresses` (pass them to `postWebhook` as `pinnedAddresses`):
 * resolving the name again would reopen DNS rebinding.
 *
 * @example
 * ```ts
 * const check = await checkDestination(subscription.url, { allowLoopback: config.allowLoopback });
 * if (!check.ok) throw new DeliveryError('SY_DELIVERY_DESTINATION_REFUSED', check.reason);
 * await postWebhook({ url, headers, body, timeoutMs: 15_000, pinnedAddresses: check.addresses });
 * ```
 */
export async function checkDestination(
  url: string,
  policy: DestinationPolicy = {},
): Promise<DestinationCheck> {
  const first = checkBeforeLookup(url, policy);
  if (!('name' in first)) return first;
  const host = first.name;
  let addresses: string[];
  try {
    addresses = await (policy.lookup ?? defaultLookup)(host);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return {
      ok: false,
      kind: 'dns',
      reason: `${host} did not resolve${typeof code === 'string' ? ` (${code})` : ''}`,
    };
  }
  if (addresses.length === 0) return { ok: false, kind: 'dns', reason: `${host} resolved to no address` };

  for (const address of addresses) {
    const reason = addressRefusal(address, host, policy);
    if (reason !== undefined) return { ok: false, kind: 'refused', reason };
  }
  return { ok: true, addresses };
}

/**
 * A `lookup` for a socket (node:http's agent, undici's `connect`) that answers only with
 * `addresses`, the ones `checkDestination` approved: the connection goes where the check looked,
 * with no second DNS resolution in between (a name that resolved to a public address for the check
 * and to 169.254.169.254 a moment later, DNS rebinding, still reaches the public one).
 *
 * @example
 * ```ts
 * const check = await checkDestination(url, { allowPrivate: true });
 * if (check.ok) http.request(url, { lookup: pinnedLookup(check.addresses) });
 * ```
 */
export function pinnedLookup(addresses: readonly string[]): LookupFunction {
  const entries = addresses.map((address) => ({ address, family: isIPv6(address) ? 6 : 4 }));
  return (_hostname, options, callback) => {
    const family = typeof options === 'number' ? options : options.family;
    const wanted = family === 4 || family === 6 || family === 'IPv4' || family === 'IPv6';
    const want = family === 6 || family === 'IPv6' ? 6 : 4;
    const list = wanted ? entries.filter((entry) => entry.family === want) : entries;
    const first = list[0];
    if (!first) {
      const error = Object.assign(new Error('no checked address of the requested family'), {
        code: 'ENOTFOUND',
      });
      callback(error, '', 0);
      return;
    }
    if (typeof options === 'object' && options.all) callback(null, list);
    else callback(null, first.address, first.family);
  };
}
