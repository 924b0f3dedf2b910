import { createHmac, randomBytes } from 'node:crypto';
import {
  ConnectorError,
  type InboundRequest,
  type InboundRequestHead,
  type InboundResponse,
  isJsonObject,
  type PresentedCredentials,
  type PushCredentials,
  timingSafeEqualString,
} from '@switchyard/core';
import { type Config, DEFAULT_TOKEN_TTL_SECONDS } from './config.ts';

/** The route JRNI fetches OAuth2 access tokens from: `POST /hooks/{instance}/oauth/token`. */
export const TOKEN_ROUTE = 'oauth-token';

/**
 * Accepts a push carrying any of the instance's configured credentials: HTTP Basic username and
 * password (`basicAuth`), JRNI's Basic token (`basicToken`), or a Bearer token issued by the
 * instance's token endpoint (`oauth2`). On the token route, checks the OAuth2 client credentials
 * instead. Every configured comparison runs, in constant time, whatever the others said.
 *
 * @example
 * ```ts
 * authenticate(request, { basicAuth: { username: 'bb', password: 'p'.repeat(20) } }); // throws ConnectorError.auth when wrong
 * ```
 */
export function authenticate(request: InboundRequestHead, config: Config): void {
  if (request.route === TOKEN_ROUTE) {
    // The client credentials may travel in the body (client_secret_post): verifyBody checks them.
    if (config.oauth2 === undefined)
      throw ConnectorError.auth('OAuth2 client credentials are not configured');
    return;
  }
  const header = request.headers.authorization;
  if (header === undefined || header === '') throw ConnectorError.auth('the Authorization header is missing');
  // Basic takes the rest of the header: JRNI sends its "Basic token" as configured, spaces and all
  // (base64 user:password has none). A Bearer token is one word (the hub's own format).
  const m = /^(?:(basic)\s+(\S.*?)|(bearer)\s+(\S+))\s*$/i.exec(header);
  if (!m) throw ConnectorError.auth('the Authorization header is neither Basic nor Bearer');
  const scheme = (m[1] ?? m[3])!.toLowerCase();
  const credentials = (m[2] ?? m[4])!;
  if (scheme === 'bearer') {
    if (config.oauth2 === undefined) throw ConnectorError.auth('Bearer tokens are not configured (oauth2)');
    if (!verifyAccessToken(credentials, config.oauth2, request.receivedAt)) {
      throw ConnectorError.auth('the Bearer token is not valid (unknown, tampered or expired)');
    }
    return;
  }
  const tokenOk = config.basicToken !== undefined && timingSafeEqualString(credentials, config.basicToken);
  const userPasswordOk = config.basicAuth !== undefined && basicMatches(credentials, config.basicAuth);
  if (!tokenOk && !userPasswordOk) throw ConnectorError.auth('the HTTP Basic credentials do not match');
}

/** True when base64 `user:password` matches; both parts are compared whatever the first said. */
function basicMatches(encoded: string, expected: { username: string; password: string }): boolean {
  // Base64 only: Node's decoder skips other characters, so a mangled header could decode right.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) return false;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return false;
  const userOk = timingSafeEqualString(decoded.slice(0, colon), expected.username);
  const passwordOk = timingSafeEqualString(decoded.slice(colon + 1), expected.password);
  return userOk && passwordOk;
}

/** The `Authorization` header value for these credentials (simulators, tests). */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

/**
 * Where a BookingBug push carries credentials: HTTP Basic in `Authorization`. An auth mode added
 * later (another header, a query token) adds its names here, from the config.
 *
 * @example
 * ```ts
 * credentials({ basicAuth: { username: 'bb', password: 'p'.repeat(20) } }); // { headers: ['authorization'] }
 * ```
 */
export function credentials(_config: Config): PushCredentials {
  return { headers: ['authorization'] };
}

/**
 * The token route's body-time check (the client credentials of {@link authenticateClient}); every
 * other route was decided by {@link authenticate} from the head.
 *
 * @example
 * ```ts
 * verifyBody(request, config); // throws ConnectorError.auth on the token route when the client is wrong
 * ```
 */
export function verifyBody(request: InboundRequest, config: Config): void {
  if (request.route === TOKEN_ROUTE) authenticateClient(request, config);
}

/**
 * The token request's fields: a form (`application/x-www-form-urlencoded`, what OAuth2 specifies)
 * or JSON (what JRNI's own token endpoint takes). Throws `badRequest` for anything else.
 */
export function tokenRequestFields(request: InboundRequest): Record<string, string> {
  const text = request.rawBody.toString('utf8').trim();
  if (text === '') return {};
  const type = request.headers['content-type'] ?? '';
  const out: Record<string, string> = {};
  if (/json/i.test(type) || text.startsWith('{')) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      throw ConnectorError.badRequest(`the token request is not valid JSON: ${(error as Error).message}`);
    }
    if (!isJsonObject(body)) throw ConnectorError.badRequest('the token request must be a JSON object');
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
    return out;
  }
  for (const [k, v] of new URLSearchParams(text)) if (!(k in out)) out[k] = v;
  return out;
}

/**
 * The token route's check: the client id and secret in HTTP Basic (`client_secret_basic`) or in the
 * body (`client_secret_post`), JRNI sends them one way or the other.
 */
function authenticateClient(request: InboundRequest, config: Config): void {
  if (config.oauth2 === undefined) throw ConnectorError.auth('OAuth2 client credentials are not configured');
  let clientId: string | undefined;
  let clientSecret: string | undefined;
  const basic = /^basic\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0) {
      // RFC 6749 §2.3.1: the client id and secret are form-encoded before Basic encoding.
      clientId = formDecode(decoded.slice(0, colon));
      clientSecret = formDecode(decoded.slice(colon + 1));
    }
  } else {
    const fields = tokenRequestFields(request);
    clientId = fields.client_id;
    clientSecret = fields.client_secret;
  }
  if (clientId === undefined || clientSecret === undefined) {
    throw ConnectorError.auth('the token request carries no client credentials');
  }
  const idOk = timingSafeEqualString(clientId, config.oauth2.clientId);
  const secretOk = timingSafeEqualString(clientSecret, config.oauth2.clientSecret);
  if (!idOk || !secretOk) throw ConnectorError.auth('the OAuth2 client credentials do not match');
}

function formDecode(value: string): string {
  try {
    return decodeURIComponent(value.replaceAll('+', ' '));
  } catch {
    return value;
  }
}

const TOKEN = /^sy1\.(\d{1,12})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;

function tokenMac(oauth2: NonNullable<Config['oauth2']>, expires: string, nonce: string): string {
  return createHmac('sha256', oauth2.clientSecret)
    .update(`switchyard.bookingbug.token.${oauth2.clientId}.${expires}.${nonce}`)
    .digest('base64url');
}

/**
 * Issues an access token: `sy1.<expiry, unix seconds>.<nonce>.<HMAC-SHA256 keyed by the client
 * secret>`. Nothing is stored: the hub checks a token by recomputing its MAC, so any hub process
 * accepts it, and changing the client secret revokes every token issued.
 *
 * @example
 * ```ts
 * issueAccessToken(config.oauth2, new Date()); // { token: 'sy1.1767225600.…', expiresIn: 3600 }
 * ```
 */
export function issueAccessToken(
  oauth2: NonNullable<Config['oauth2']>,
  now: Date,
): { token: string; expiresIn: number } {
  const expiresIn = oauth2.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const expires = String(Math.floor(now.getTime() / 1000) + expiresIn);
  const nonce = randomBytes(12).toString('base64url');
  return { token: `sy1.${expires}.${nonce}.${tokenMac(oauth2, expires, nonce)}`, expiresIn };
}

/** True for a token {@link issueAccessToken} issued with these client credentials and not yet expired. */
export function verifyAccessToken(token: string, oauth2: NonNullable<Config['oauth2']>, now: Date): boolean {
  const m = TOKEN.exec(token);
  if (!m) return false;
  const [, expires, nonce, mac] = m as unknown as [string, string, string, string];
  const macOk = timingSafeEqualString(mac, tokenMac(oauth2, expires, nonce));
  return macOk && Number(expires) * 1000 > now.getTime();
}

/**
 * The token endpoint's answer (RFC 6749 §5.1), `no-store` so no cache keeps it.
 *
 * @example
 * ```ts
 * tokenResponse(config, request.receivedAt); // { status: 200, body: { access_token: 'sy1.…', token_type: 'Bearer', expires_in: 3600 } }
 * ```
 */
export function tokenResponse(config: Config, now: Date): InboundResponse {
  if (config.oauth2 === undefined) throw new Error('tokenResponse without oauth2 settings');
  const { token, expiresIn } = issueAccessToken(config.oauth2, now);
  return {
    status: 200,
    headers: { 'cache-control': 'no-store', pragma: 'no-cache' },
    body: { access_token: token, token_type: 'Bearer', expires_in: expiresIn },
  };
}

/**
 * What BookingBug / JRNI presents on a push, from the first configured credential: HTTP Basic
 * username and password (`basicAuth`), the Basic token (`basicToken`), or a Bearer token as the
 * instance's token endpoint would issue it at `receivedAt` (`oauth2`). On the token route, the
 * client credentials in HTTP Basic (`client_secret_basic`). `switchyard push` sends it.
 *
 * @example
 * ```ts
 * sign(request, { basicToken: 'bb-token-0123456789' }); // { headers: { authorization: 'Basic bb-token-0123456789' } }
 * ```
 */
export function sign(request: { route: string; receivedAt: Date }, config: Config): PresentedCredentials {
  const authorization = (value: string) => ({ headers: { authorization: value } });
  if (request.route === TOKEN_ROUTE) {
    if (!config.oauth2) return {};
    // RFC 6749 §2.3.1: each part form-encoded before the Basic encoding.
    const encode = (v: string) => encodeURIComponent(v).replaceAll('%20', '+');
    return authorization(
      basicAuthorization(encode(config.oauth2.clientId), encode(config.oauth2.clientSecret)),
    );
  }
  if (config.basicAuth)
    return authorization(basicAuthorization(config.basicAuth.username, config.basicAuth.password));
  if (config.basicToken) return authorization(`Basic ${config.basicToken}`);
  if (config.oauth2)
    return authorization(`Bearer ${issueAccessToken(config.oauth2, request.receivedAt).token}`);
  return {};
}
