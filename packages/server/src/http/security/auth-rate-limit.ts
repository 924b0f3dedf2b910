/**
 * Brute-force brake for credentials: after too many refused authentications from one client
 * address against one target (a connector instance's hooks, the admin API with the dashboard
 * sign-in, one subscription's pull feed, the command credentials, the FHIR endpoint), further
 * wrong credentials from that address get `429` from that target until its failures age out of the
 * window. Counting per (address, target) keeps one misbehaving client — a vendor with a stale key, a
 * subscriber with a stale feed secret or command credential, or every client behind a proxy not
 * listed in `trustedProxies` — from locking the same address out of the other instances and the
 * admin API. Inbound vendor keys and the admin token are compared in constant time, so timing tells
 * an attacker nothing; this bounds how many guesses they get at all.
 *
 * What a limited address still gets depends on who chose the target's credential
 * ({@link checkedWhileLimited}). The hub's own credentials (a feed secret: a signing secret of
 * 24 to 64 bytes, 32 random ones when the hub makes it; a `sycmd_` credential: 192 random bits) and a vendor push's key (long and random, and shared by a whole webhook fleet
 * whose other customers, or a stale second webhook, send from the same egress addresses) are still
 * checked: the right one is served, a wrong one gets `429` and counts. Refusing the right one too
 * would let one misconfigured or hostile client behind a shared NAT or vendor fleet stop every
 * other (Quable disables a webhook after 3 failed deliveries). Checking it tells a guesser which
 * guess was right — an oracle that is worthless against 2^256 secrets and costs 2^95 requests
 * against a 16-character random key; what the limit then buys there is the 429 that tells a
 * misconfigured client why. The admin token (and so the dashboard sign-in and the FHIR endpoint,
 * which take it) is chosen by the operator, guards everything, and has few legitimate clients: a
 * limited address is refused before any credential is looked at, so it gets nothing to learn from.
 *
 * The target is chosen from the route the router matched, never from the raw request target: the
 * router decodes percent-escapes and accepts absolute-form targets (`GET http://host/v1/...`), so
 * `/%761/subscriptions` reaches the admin routes, and must count against the admin budget too.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import ipaddr from 'ipaddr.js';
import { bearerToken } from '../../admin/http.ts';
import { clientAddress } from '../client-address.ts';
import { problemOf } from '../errors.ts';
import { pathOf, sendProblem } from '../plugins/problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * True when the request's address is over the failed-authentication limit on its target and
     * the target's credential is still checked ({@link checkedWhileLimited}). A check that reads
     * the database screens such a request in memory first (a `sycmd_` credential, a feed secret:
     * `CredentialSnapshot`), so a limited address's wrong guesses cost no database read each.
     */
    authLimited?: boolean;
  }
}

/** Options of {@link AuthFailureLimiter} and {@link installAuthRateLimit}. */
export interface AuthRateLimitOptions {
  /** Refused authentications allowed per key (address and target) within `windowMs`; the next request is refused. Default 20. */
  maxFailures?: number;
  /** Sliding window, ms. Default 60 000. */
  windowMs?: number;
  /** Keys (address and target pairs) remembered at once (least recently failed ones are forgotten first). Default 10 000. */
  maxAddresses?: number;
  /**
   * Keys one group (the installer's: one client address) may have; its failures against further
   * targets count together under one key of the group. Default 50.
   */
  maxKeysPerGroup?: number;
  /** Clock, ms (tests). Default `Date.now`. */
  now?: () => number;
}

/** The verdict on one key. */
export type LimitVerdict = { limited: false } | { limited: true; retryAfterSeconds: number };

/**
 * Counts refused authentications per key (the installer uses {@link limitKey}: client address and
 * target) in a sliding window (a log of failure times, at most `maxFailures` per key) and says when
 * a key is over the limit. Memory is bounded: at most `maxAddresses` keys × `maxFailures`
 * timestamps; the key that failed least recently is dropped first, so a flood of spoofed-looking
 * addresses cannot grow the map. A key may belong to a group (a client address), which has at most
 * `maxKeysPerGroup` keys: failures against more targets count under one overflow key of the group.
 * Without it one address failing once on each of 10,000 made-up targets (feed ids, hook instance
 * ids) pushed its own limited admin key out of the map and guessed the admin token on, 20 at a time.
 *
 * @example
 * ```ts
 * const limiter = new AuthFailureLimiter({ maxFailures: 20, windowMs: 60_000 });
 * const key = limitKey('203.0.113.9', 'instance:dp');
 * limiter.recordFailure(key);
 * limiter.check(key); // { limited: false } until the 20th failure within a minute
 * ```
 */
export class AuthFailureLimiter {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly maxAddresses: number;
  readonly maxKeysPerGroup: number;
  readonly #now: () => number;
  // Map iteration order is insertion order: re-inserting on each failure makes it an LRU.
  readonly #failures = new Map<string, number[]>();
  /** The keys of each group, and the group of each key (for the keys given one). */
  readonly #groupKeys = new Map<string, Set<string>>();
  readonly #groupOf = new Map<string, string>();

  constructor(options: AuthRateLimitOptions = {}) {
    this.maxFailures = options.maxFailures ?? 20;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxAddresses = options.maxAddresses ?? 10_000;
    this.maxKeysPerGroup = options.maxKeysPerGroup ?? 50;
    this.#now = options.now ?? Date.now;
    if (!Number.isInteger(this.maxFailures) || this.maxFailures < 1)
      throw new RangeError('maxFailures must be ≥ 1');
    if (!(this.windowMs > 0)) throw new RangeError('windowMs must be > 0');
    if (!Number.isInteger(this.maxAddresses) || this.maxAddresses < 1)
      throw new RangeError('maxAddresses must be ≥ 1');
  }

  /** Keys currently remembered. */
  get size(): number {
    return this.#failures.size;
  }

  #recent(key: string, now: number): number[] {
    const times = this.#failures.get(key);
    if (!times) return [];
    const cutoff = now - this.windowMs;
    let drop = 0;
    while (drop < times.length && times[drop]! <= cutoff) drop++;
    if (drop > 0) times.splice(0, drop);
    if (times.length === 0) this.#forget(key);
    return times;
  }

  #forget(key: string): void {
    this.#failures.delete(key);
    const group = this.#groupOf.get(key);
    if (group === undefined) return;
    this.#groupOf.delete(key);
    const keys = this.#groupKeys.get(group);
    keys?.delete(key);
    if (keys?.size === 0) this.#groupKeys.delete(group);
  }

  /** The key failures of `key` count under: itself, or its group's overflow key once the group is full. */
  #resolve(key: string, group: string | undefined): string {
    if (group === undefined || this.#failures.has(key)) return key;
    const keys = this.#groupKeys.get(group);
    return keys !== undefined && keys.size >= this.maxKeysPerGroup ? `${group}\u0000overflow` : key;
  }

  /** Whether `key` (of `group`, if given) is over the limit now, and for how long. */
  check(key: string, group?: string): LimitVerdict {
    const now = this.#now();
    const times = this.#recent(this.#resolve(key, group), now);
    if (times.length < this.maxFailures) return { limited: false };
    // Allowed again once the oldest failure in the log leaves the window.
    const retryAfterSeconds = Math.max(1, Math.ceil((times[0]! + this.windowMs - now) / 1000));
    return { limited: true, retryAfterSeconds };
  }

  /** Records one refused authentication for `key` (of `group`, if given). */
  recordFailure(key: string, group?: string): void {
    const now = this.#now();
    const counted = this.#resolve(key, group);
    const times = this.#recent(counted, now);
    times.push(now);
    // Only the newest maxFailures matter for the verdict: older ones cannot change it.
    if (times.length > this.maxFailures) times.splice(0, times.length - this.maxFailures);
    this.#failures.delete(counted);
    this.#failures.set(counted, times);
    if (group !== undefined && !this.#groupOf.has(counted)) {
      this.#groupOf.set(counted, group);
      const keys = this.#groupKeys.get(group) ?? new Set<string>();
      this.#groupKeys.set(group, keys);
      keys.add(counted);
    }
    while (this.#failures.size > this.maxAddresses) {
      this.#forget(this.#failures.keys().next().value as string);
    }
  }
}

/** Options of {@link installAuthRateLimit}. */
export interface InstallAuthRateLimitOptions extends AuthRateLimitOptions {
  /**
   * The target a request authenticates against, whose failures are counted together; `undefined`
   * for requests that are neither protected nor counted. Called in `onRequest`, once the router has
   * matched the route. Default: {@link authTargetOf} of {@link matchedRouteOf}.
   */
  targetOf?: (request: FastifyRequest) => string | undefined;
  /** Answer statuses that count as a refused authentication. Default 401 and 403. */
  failureStatuses?: readonly number[];
  /**
   * Whether a limited address's requests to a target still have their credential checked (the
   * right one served, a wrong one answered 429) rather than refused unchecked. Default
   * {@link checkedWhileLimited}.
   */
  checkWhileLimited?: (target: string) => boolean;
}

/** What {@link authTargetOf} decides on: the route the router matched, never the raw request target. */
export interface MatchedRoute {
  /** The route's pattern as registered (`request.routeOptions.url`); undefined when none matched. */
  url: string | undefined;
  /** The route's `config.auth` (`admin` when absent, `subscription`, `command`, `none`). */
  auth?: string | undefined;
  /** The router's parameters, percent-decoded (`instance` of a hook, `id` of a subscription). */
  params: Readonly<Record<string, string | undefined>>;
  /** The bearer token presented, if any: a `sycmd_` one is a command credential, not an admin guess. */
  bearer?: string | undefined;
}

/**
 * The {@link MatchedRoute} of a request (call it once routing is done: `onRequest` and later).
 *
 * @example
 * ```ts
 * app.addHook('onRequest', (request, _reply, done) => {
 *   console.log(authTargetOf(matchedRouteOf(request))); // 'admin' for GET /%761/subscriptions too
 *   done();
 * });
 * ```
 */
export function matchedRouteOf(request: FastifyRequest): MatchedRoute {
  const { url, config } = request.routeOptions;
  const auth = (config as { auth?: string } | undefined)?.auth;
  return {
    url,
    auth,
    params: (request.params ?? {}) as Record<string, string | undefined>,
    // Only the command routes take two kinds of credential; no other request pays for the parse.
    ...(auth === 'command' ? { bearer: bearerToken(request) } : {}),
  };
}

/**
 * The credential a matched route is checked against: `instance:<id>` for the hooks (`/hooks/:instance`
 * and its sub-routes: each connector instance has its own key), `feed:<id>` for a subscription's
 * pull feed (`config.auth: 'subscription'`: its own secret), `command` for a command route given a
 * `sycmd_` credential, `admin` for the rest of the admin API (`/v1/…`, a command route given anything
 * else) and the dashboard sign-in (`/ui/session`, which trades the admin token for a session), `fhir`
 * for the FHIR endpoint (admin or read tokens); `undefined` for routes that check no credential
 * (`config.auth: 'none'`), other routes, and requests no route matched.
 *
 * @example
 * ```ts
 * authTargetOf({ url: '/hooks/:instance/*', params: { instance: 'dp-main', '*': 'cancellation' } }); // 'instance:dp-main'
 * authTargetOf({ url: '/v1/subscriptions/:id/events', auth: 'subscription', params: { id: 'crm' } }); // 'feed:crm'
 * authTargetOf({ url: '/v1/commands', auth: 'command', params: {}, bearer: 'sycmd_abc' });        // 'command'
 * authTargetOf({ url: '/ui/session', params: {} });                                                 // 'admin'
 * authTargetOf({ url: undefined, params: {} });                                                     // undefined
 * ```
 */
export function authTargetOf(route: MatchedRoute): string | undefined {
  const { url, auth, params } = route;
  if (url === undefined || auth === 'none') return undefined;
  if (url === '/hooks/:instance' || url.startsWith('/hooks/:instance/')) {
    return params.instance ? `instance:${params.instance}` : undefined;
  }
  if (url.startsWith('/v1/') || url === '/ui/session') {
    if (auth === 'subscription') return params.id ? `feed:${params.id}` : undefined;
    if (auth === 'command' && route.bearer?.startsWith('sycmd_')) return 'command';
    return 'admin';
  }
  if (url.startsWith('/fhir/')) return 'fhir';
  return undefined;
}

/**
 * Whether a target's credential is still checked for an address over the limit: true for the
 * targets whose credentials cannot be guessed at any request rate — a connector instance's hooks
 * (the vendor's push key, at least 16 characters, 8 for Docplanner's header key, long and random by the
 * connectors' advice), a
 * subscription's pull feed (a signing secret of at least 24 bytes, 32 random ones when the hub
 * makes it) and the `sycmd_` command credentials (192 random bits, the hub's) — so that one client with a wrong credential behind
 * a shared address (a vendor's webhook fleet, a NAT) does not lock out the others there. False for
 * the admin API, the dashboard sign-in and the FHIR endpoint: the operator's admin token is only
 * known to be 16 characters long, so a limited address is refused there before the check and gets
 * no answer to learn from.
 *
 * @example
 * ```ts
 * checkedWhileLimited('instance:quable-main'); // true: the right Authorization header still gets 202
 * checkedWhileLimited('admin');                // false: 429 whatever the token
 * ```
 */
export function checkedWhileLimited(target: string): boolean {
  return target.startsWith('instance:') || target.startsWith('feed:') || target === 'command';
}

/**
 * The client an address stands for, as the limiter counts it: an IPv4 address itself (also as a
 * dual-stack socket shows it, `::ffff:203.0.113.9`), an IPv6 address by its /64. A /64 is the least
 * an ISP gives a customer line and a cloud a VM or a container, and every address in it is its
 * holder's to send from: counted one by one, 2^64 addresses had 20 guesses a minute each, so the
 * admin token had no bound at all over IPv6. Anything else (a proxy's header that is no address)
 * is kept as it is.
 *
 * @example
 * ```ts
 * limitedClient('2001:db8:1:2::7');       // '2001:db8:1:2::/64'
 * limitedClient('::ffff:203.0.113.9');    // '203.0.113.9'
 * limitedClient('203.0.113.9');           // '203.0.113.9'
 * ```
 */
export function limitedClient(address: string): string {
  // An IPv4 socket's address (most requests): nothing to parse.
  if (!address.includes(':') || !ipaddr.isValid(address)) return address;
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const prefix = (parsed as ipaddr.IPv6).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...prefix, 0, 0, 0, 0]).toString()}/64`;
}

/** The limiter key of a client address and a target (see {@link authTargetOf}). @example `limitKey('203.0.113.9', 'admin')` */
export function limitKey(address: string, target: string): string {
  return `${target} ${address}`;
}

/**
 * Adds the limiter to a fastify app: an `onRequest` hook answers `429 SY_HTTP_TOO_MANY_AUTH_FAILURES`
 * (problem+json, `Retry-After`) to an address limited on the request's target before any credential
 * is looked at — unless the target's credentials are checked while limited
 * ({@link checkedWhileLimited}): then the request goes on to its credential check, and only a
 * refusal (401/403) is turned into that 429 (`onSend`), so the right credential is still served.
 * An `onResponse` hook records every 401/403 the protected routes answered (and every refusal
 * turned into a 429), for their target only (that of the route the router matched, however the
 * path was encoded). The address is `request.ip`, so it honours the app's `trustProxy` (the client
 * behind a trusted proxy, never a spoofable header otherwise; without a port a proxy wrote there:
 * {@link clientAddress}), an IPv6 one counted by its /64 ({@link limitedClient}). Successful requests are never
 * counted. Call it on the root instance **before** the routes are registered, so its hooks run first
 * for every route.
 *
 * @example
 * ```ts
 * const app = Fastify();
 * installAuthRateLimit(app, { maxFailures: 20, windowMs: 60_000 });
 * await app.register(hookRoutes, deps);
 * ```
 */
export function installAuthRateLimit(
  app: FastifyInstance,
  options: InstallAuthRateLimitOptions = {},
): AuthFailureLimiter {
  const limiter = new AuthFailureLimiter(options);
  const targetOf = options.targetOf ?? ((request: FastifyRequest) => authTargetOf(matchedRouteOf(request)));
  const failureStatuses = new Set(options.failureStatuses ?? [401, 403]);
  const checkWhileLimited = options.checkWhileLimited ?? checkedWhileLimited;
  /** The target of each request let through to its credential check while its address is limited. */
  const checkedLimited = new WeakMap<FastifyRequest, string>();
  const tooMany = (request: FastifyRequest, retryAfterSeconds: number) =>
    problemOf(
      'SY_HTTP_TOO_MANY_AUTH_FAILURES',
      `too many failed authentications from this address; retry in ${retryAfterSeconds} s`,
      pathOf(request),
    );
  // Callback-style hooks, not async ones: they run on every request, and an async hook costs each
  // request a promise and its microtasks.
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const target = targetOf(request);
    if (target === undefined) return done();
    const client = limitedClient(clientAddress(request));
    const verdict = limiter.check(limitKey(client, target), client);
    if (!verdict.limited) return done();
    if (checkWhileLimited(target)) {
      checkedLimited.set(request, target);
      request.authLimited = true;
      return done();
    }
    // Answered: `done` is not called (nor the reply returned, which fastify would await).
    sendProblem(reply, tooMany(request, verdict.retryAfterSeconds), {
      'retry-after': String(verdict.retryAfterSeconds),
    });
  });
  app.addHook(
    'onSend',
    (
      request: FastifyRequest,
      reply: FastifyReply,
      payload: unknown,
      done: (error: null, payload: unknown) => void,
    ) => {
      const target = checkedLimited.get(request);
      if (target === undefined || !failureStatuses.has(reply.statusCode)) return done(null, payload);
      // The credential was checked and refused: counted as any refusal, answered as limited.
      const client = limitedClient(clientAddress(request));
      limiter.recordFailure(limitKey(client, target), client);
      checkedLimited.delete(request);
      const verdict = limiter.check(limitKey(client, target), client);
      const retryAfterSeconds = verdict.limited ? verdict.retryAfterSeconds : 1;
      const problem = tooMany(request, retryAfterSeconds);
      reply
        .code(problem.status)
        .header('retry-after', String(retryAfterSeconds))
        .type('application/problem+json; charset=utf-8');
      done(null, JSON.stringify(problem));
    },
  );
  app.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, done: () => void) => {
    if (failureStatuses.has(reply.statusCode)) {
      const target = targetOf(request);
      if (target !== undefined) {
        const client = limitedClient(clientAddress(request));
        limiter.recordFailure(limitKey(client, target), client);
      }
    }
    done();
  });
  return limiter;
}
