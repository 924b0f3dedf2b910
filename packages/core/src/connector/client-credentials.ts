/**
 * OAuth2 client-credentials access tokens for a connector's calls to its vendor's API (RFC 6749
 * §4.4): one helper instead of a copy per connector (Docplanner's was ~100 lines that every pull
 * connector needing a token would have copied).
 */
import { createHash } from 'node:crypto';
import { ConnectorError } from '../errors/connector-error.ts';
import { isJsonObject } from '../json.ts';
import { isRetryableStatus, parseRetryAfter } from './helpers.ts';
import type { VendorHttp, VendorRequest, VendorResponse } from './types.ts';

/**
 * How many tokens one {@link clientCredentials} holds at most: more than the instances of one
 * connector a hub runs, at a few hundred bytes each; past it the least recently used goes.
 */
export const MAX_CACHED_ACCESS_TOKENS = 10_000;

/**
 * The token's life in seconds from a token answer's `expires_in`: a number by RFC 6749 §5.1, but
 * some identity providers send it as a numeric string (Azure AD's v1 endpoint: `"3599"`), read the
 * same; absent or not a positive number, {@link DEFAULT_ACCESS_TOKEN_LIFE_SECONDS}.
 */
function lifeOf(body: unknown): number {
  const given = isJsonObject(body) ? body.expires_in : undefined;
  const seconds = typeof given === 'string' && given.trim() !== '' ? Number(given) : given;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds > 0
    ? seconds
    : DEFAULT_ACCESS_TOKEN_LIFE_SECONDS;
}

/** A token is renewed this long before the vendor says it expires, so a request never races the expiry. */
export const ACCESS_TOKEN_EXPIRY_MARGIN_MS = 30_000;

/** The token's life when the vendor's answer has no `expires_in` (RFC 6749 §5.1 makes it optional). */
export const DEFAULT_ACCESS_TOKEN_LIFE_SECONDS = 3600;

/** What the helper needs of a context: pull, command and normalize contexts all have it. */
export interface ClientCredentialsContext<Config> {
  instanceId: string;
  config: Config;
  http: VendorHttp;
}

/** How a connector gets its tokens. */
export interface ClientCredentialsOptions<Config> {
  /** The vendor's name as messages say it: `Docplanner` gives "Docplanner refused the client credentials …". */
  vendor: string;
  /** The token endpoint of an instance: `${apiBase(config)}/oauth/v2/token`. */
  tokenUrl(config: Config): string;
  /** The instance's client id and secret; undefined when they are not configured. */
  credentials(config: Config): { clientId: string; clientSecret: string } | undefined;
  /**
   * How the client authenticates at the token endpoint (RFC 6749 §2.3.1): `basic` is HTTP Basic,
   * `client_id:client_secret` as they are (not form-encoded first, as most vendors expect);
   * `body` puts `client_id` and `client_secret` in the form with the grant.
   */
  authentication: 'basic' | 'body';
  /** The `scope` form field, when the vendor wants one. */
  scope?: string;
  /** The permanent error's message when {@link credentials} gives none. Default: "<vendor> API calls need client credentials". */
  missingCredentials?: string;
  /**
   * How long the vendor said to wait, from a token endpoint's 408/429/5xx answer. Default: its
   * `Retry-After` ({@link parseRetryAfter}); a vendor whose rate limiter says so elsewhere passes
   * its own reader.
   */
  retryAfterMs?(response: VendorResponse): number | undefined;
}

/** The tokens of one connector, cached per instance in this process's memory. */
export interface ClientCredentials<Config> {
  /**
   * The instance's access token: the cached one while it is valid (renewed
   * {@link ACCESS_TOKEN_EXPIRY_MARGIN_MS} before it expires), else a new one. `refused`, the token
   * the API answered 401 to (revoked), drops it first, but only while it is the one held, so callers
   * refused with the same token share one new one (another may have renewed it already). For a
   * caller that must hold the token before its request may count as sent; other callers use
   * {@link ClientCredentials.request}.
   */
  token(ctx: ClientCredentialsContext<Config>, options?: { refused?: string }): Promise<string>;
  /** Forgets the instance's token. */
  forget(ctx: ClientCredentialsContext<Config>): void;
  /**
   * Calls the API with `authorization: Bearer <token>` (and `accept: application/json` unless
   * given). A 401 drops the token and the call is sent once more with a new one (the one another
   * caller refused with the same token already got, if any); a second 401 is a permanent error (the
   * client credentials no longer reach the API).
   */
  request(
    ctx: ClientCredentialsContext<Config>,
    request: Omit<VendorRequest, 'headers'> & { headers?: Record<string, string> },
  ): Promise<VendorResponse>;
}

interface HeldToken {
  accessToken: string;
  /** Epoch ms. */
  expiresAt: number;
}

/**
 * Builds a connector's client-credentials token source. Tokens are held in memory only, never in
 * the instance state (the hub keeps no secret in its rows), keyed by instance and by a hash of the
 * token URL, client credentials and scope, so an instance whose settings change asks anew; each
 * process gets its own. Every call goes through the context's `http`, so the hub's timeouts,
 * tracing and redaction apply. Errors, whose messages and details never hold a secret (only the
 * status):
 * - credentials not configured: permanent, without a call;
 * - the token endpoint answering 408, 429 or 5xx: transient, with the wait it asked for;
 * - a 2xx without `access_token` (a maintenance page, a proxy answering for the vendor): transient;
 * - any other answer (400/401 for wrong credentials): permanent, "<vendor> refused the client credentials".
 *
 * @example
 * ```ts
 * const oauth = clientCredentials<Config>({
 *   vendor: 'Acme',
 *   tokenUrl: (config) => `${config.apiBaseUrl}/oauth/token`,
 *   credentials: (config) =>
 *     config.clientId && config.clientSecret ? { clientId: config.clientId, clientSecret: config.clientSecret } : undefined,
 *   authentication: 'basic',
 *   scope: 'appointments:read',
 * });
 * // In pull.fetch (or a command):
 * const res = await oauth.request(ctx, { url: `${ctx.config.apiBaseUrl}/appointments?changedSince=${since}` });
 * ```
 */
export function clientCredentials<Config>(
  options: ClientCredentialsOptions<Config>,
): ClientCredentials<Config> {
  const { vendor } = options;
  /** Most recently used last. */
  const tokens = new Map<string, HeldToken>();
  /**
   * The token requests under way, by key: callers that find no valid token at the same moment (a
   * burst of commands once a token expired, a pull turn beside them) share one request instead of
   * each asking, which a vendor's token endpoint may rate-limit (429) or answer with tokens that
   * revoke each other.
   */
  const asking = new Map<string, Promise<HeldToken>>();

  const keyOf = (ctx: ClientCredentialsContext<Config>): string => {
    const { clientId = '', clientSecret = '' } = options.credentials(ctx.config) ?? {};
    const hash = createHash('sha256')
      .update(JSON.stringify([options.tokenUrl(ctx.config), clientId, clientSecret, options.scope ?? null]))
      .digest('base64url');
    return `${ctx.instanceId} ${hash}`;
  };

  const hold = (key: string, token: HeldToken): void => {
    tokens.delete(key);
    tokens.set(key, token);
    while (tokens.size > MAX_CACHED_ACCESS_TOKENS) tokens.delete(tokens.keys().next().value!);
  };

  const requestToken = (ctx: ClientCredentialsContext<Config>): Promise<HeldToken> => {
    const key = keyOf(ctx);
    let request = asking.get(key);
    if (request === undefined) {
      request = askToken(ctx, key).finally(() => asking.delete(key));
      asking.set(key, request);
    }
    return request;
  };

  const askToken = async (ctx: ClientCredentialsContext<Config>, key: string): Promise<HeldToken> => {
    const credentials = options.credentials(ctx.config);
    if (!credentials) {
      throw ConnectorError.permanent(
        options.missingCredentials ?? `${vendor} API calls need client credentials`,
      );
    }
    const form: Record<string, string> = { grant_type: 'client_credentials' };
    if (options.scope !== undefined) form.scope = options.scope;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.authentication === 'basic') {
      const basic = Buffer.from(`${credentials.clientId}:${credentials.clientSecret}`).toString('base64');
      headers.authorization = `Basic ${basic}`;
    } else {
      form.client_id = credentials.clientId;
      form.client_secret = credentials.clientSecret;
    }
    const res = await ctx.http.request({ method: 'POST', url: options.tokenUrl(ctx.config), headers, form });
    if (isRetryableStatus(res.status)) {
      const after = options.retryAfterMs
        ? options.retryAfterMs(res)
        : parseRetryAfter(res.headers['retry-after'] ?? res.headers['Retry-After']);
      throw ConnectorError.transient(`${vendor} token endpoint answered ${res.status}`, {
        details: { status: res.status },
        ...(after === undefined ? {} : { retryAfterMs: after }),
      });
    }
    const body = res.body;
    const accessToken =
      isJsonObject(body) && typeof body.access_token === 'string' && body.access_token !== ''
        ? body.access_token
        : undefined;
    const ok = res.status >= 200 && res.status < 300;
    if (ok && accessToken === undefined) {
      // A 2xx is no refusal: a maintenance page or a proxy answering for the vendor (HTML), or a
      // body without the token. Taken for refused credentials, it failed a command for good.
      throw ConnectorError.transient(
        `${vendor}'s token endpoint answered ${res.status} without an access token`,
        {
          details: { status: res.status },
        },
      );
    }
    if (!ok || accessToken === undefined) {
      // 400/401 here means the client credentials are wrong: retrying will not help until they are fixed.
      throw ConnectorError.permanent(
        `${vendor} refused the client credentials (token endpoint answered ${res.status})`,
        { details: { status: res.status } },
      );
    }
    const token = { accessToken, expiresAt: Date.now() + lifeOf(body) * 1000 };
    hold(key, token);
    return token;
  };

  const currentToken = async (ctx: ClientCredentialsContext<Config>): Promise<HeldToken> => {
    const key = keyOf(ctx);
    const held = tokens.get(key);
    if (held && held.expiresAt - ACCESS_TOKEN_EXPIRY_MARGIN_MS > Date.now()) {
      hold(key, held);
      return held;
    }
    tokens.delete(key);
    return requestToken(ctx);
  };

  const forget = (ctx: ClientCredentialsContext<Config>): void => {
    tokens.delete(keyOf(ctx));
  };

  /**
   * Drops a token the API refused (401) only while it is the one held: callers refused with the
   * same token (a burst once the vendor revoked it) share one new token; another caller may have
   * renewed it already, and dropping that one would ask again, a new token that may revoke it in turn.
   */
  const dropIfHeld = (ctx: ClientCredentialsContext<Config>, refused: string): void => {
    const key = keyOf(ctx);
    if (tokens.get(key)?.accessToken === refused) tokens.delete(key);
  };

  return {
    async token(ctx, { refused } = {}) {
      if (refused !== undefined) dropIfHeld(ctx, refused);
      return (await currentToken(ctx)).accessToken;
    },
    forget,
    async request(ctx, request) {
      const send = (token: HeldToken) =>
        ctx.http.request({
          ...request,
          headers: {
            accept: 'application/json',
            ...request.headers,
            authorization: `Bearer ${token.accessToken}`,
          },
        });
      const refused = await currentToken(ctx);
      let res = await send(refused);
      if (res.status !== 401) return res;
      dropIfHeld(ctx, refused.accessToken);
      res = await send(await currentToken(ctx));
      if (res.status === 401) {
        throw ConnectorError.permanent(
          `${vendor} API answered 401 with a fresh token: check the client credentials`,
        );
      }
      return res;
    },
  };
}
