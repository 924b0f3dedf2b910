import {
  ConnectorError,
  clientCredentials,
  dedupeKeyOf,
  isJsonObject,
  type JsonValue,
  MAX_CACHED_ACCESS_TOKENS,
  type PullBatch,
  type PullContext,
  type PullSpec,
  parseRetryAfter,
  type ReconcileSpec,
  type VendorNotification,
  type VendorRequest,
  type VendorResponse,
} from '@switchyard/core';
import {
  type Config,
  DEFAULT_PULL_LAG_WARNING_HOURS,
  DEFAULT_PULL_LIMIT,
  DEFAULT_RELEASE_INTERVAL_MINUTES,
} from './config.ts';
import { toVendorNotification } from './parse.ts';

/** Docplanner deletes notifications that were not pulled within this long. */
export const EXPIRY_MS = 72 * 3_600_000;

/**
 * A pulled batch. `oldestOccurredAt` is the vendor time of the oldest notification in it: with the
 * hub's clock it says how close the queue is to Docplanner's 72-hour expiry.
 */
export interface DocplannerPullBatch extends PullBatch {
  oldestOccurredAt?: string;
}

/**
 * `https://www.{domain}` unless `apiBaseUrl` overrides it.
 *
 * @example
 * ```ts
 * apiBase({ domain: 'znanylekarz.pl' }); // 'https://www.znanylekarz.pl'
 * ```
 */
export function apiBase(config: Config): string {
  if (config.apiBaseUrl) return config.apiBaseUrl.replace(/\/+$/, '');
  if (config.domain) return `https://www.${config.domain}`;
  throw ConnectorError.permanent(
    'Docplanner API calls need settings.domain (e.g. znanylekarz.pl) or settings.apiBaseUrl',
  );
}

/**
 * How long Docplanner said to wait before the next call, in ms, when it said: `Retry-After`
 * (seconds or an HTTP date; core's one parser), which only `release` sends; else, on a 429, until
 * `X-RateLimit-Reset`. Docplanner's rate limiter (an hourly request quota and a per-minute limit of
 * writes) answers 429 with the `X-RateLimit-*` headers and no Retry-After, `X-RateLimit-Reset` being
 * "the date and time when the rate limit will reset, formatted in ISO8601"
 * (integrations.docplanner.com/guide/fundamentals/rate-limits.html). Not on other statuses: every
 * answer carries the limiter's headers, and a 503 says nothing of the quota.
 *
 * @example
 * ```ts
 * retryAfterMs({ status: 429, headers: { 'x-ratelimit-reset': '2026-10-21T07:30:00+00:00' } }, Date.parse('2026-10-21T07:28:00Z')); // 120000
 * ```
 */
export function retryAfterMs(
  res: Pick<VendorResponse, 'status' | 'headers'>,
  now = Date.now(),
): number | undefined {
  const after = parseRetryAfter(res.headers['retry-after'] ?? res.headers['Retry-After'], now);
  if (after !== undefined || res.status !== 429) return after;
  const reset = res.headers['x-ratelimit-reset'] ?? res.headers['X-RateLimit-Reset'];
  // An ISO 8601 date only (a bare number would read as seconds to wait).
  return reset !== undefined && /t/i.test(reset) ? parseRetryAfter(reset, now) : undefined;
}

function transientFor(what: string, res: VendorResponse): ConnectorError | undefined {
  if (res.status >= 500 || res.status === 429 || res.status === 408) {
    const after = retryAfterMs(res);
    return ConnectorError.transient(`Docplanner ${what} answered ${res.status}`, {
      details: { status: res.status },
      ...(after === undefined ? {} : { retryAfterMs: after }),
    });
  }
  return undefined;
}

/**
 * Access tokens for the integration API (OAuth2 client credentials, HTTP Basic, scope
 * `integration`), held in this process's memory per instance and per API base and credentials,
 * never in the instance state (a token is a secret; it was kept in `docplanner:oauth-token`, in
 * plain text). Shared by pull and commands. The token endpoint's 429 waits for
 * `X-RateLimit-Reset` like every other Docplanner call ({@link retryAfterMs}).
 */
const oauth = clientCredentials<Config>({
  vendor: 'Docplanner',
  tokenUrl: (config) => `${apiBase(config)}/oauth/v2/token`,
  credentials: ({ clientId, clientSecret }) =>
    clientId && clientSecret ? { clientId, clientSecret } : undefined,
  authentication: 'basic',
  scope: 'integration',
  missingCredentials: 'Docplanner pull needs settings.clientId and settings.clientSecret',
  retryAfterMs: (res) => retryAfterMs(res),
});

/** How many instances' tokens a process holds at most (the SDK's one limit). */
export const MAX_CACHED_TOKENS = MAX_CACHED_ACCESS_TOKENS;

/**
 * The access token for the integration API: the one this process holds while it is valid, else a
 * new one from the token endpoint (held for pull and commands alike, never stored). `refused`, the
 * token the API answered 401 to (revoked), is dropped while it is the one held, so a new one is given. For a caller that must have the token in hand before its request may
 * count as sent (a command's write that Docplanner cannot deduplicate); other callers use
 * {@link docplannerApi}. Throws like the token endpoint's answer: transient on 5xx/408/429,
 * permanent on refused client credentials.
 *
 * @example
 * ```ts
 * const token = await accessToken(ctx); // 'eyJ…'
 * const fresh = await accessToken(ctx, { refused: token });
 * ```
 */
export function accessToken(
  ctx: PullContext<Config>,
  options: { renew?: boolean; refused?: string } = {},
): Promise<string> {
  return oauth.token(ctx, options);
}

/**
 * Calls the integration API with a bearer token: fetched with client credentials, held in memory
 * until it expires, renewed once when the API answers 401 (a revoked token).
 *
 * @example
 * ```ts
 * const res = await docplannerApi(ctx, { url: `${apiBase(ctx.config)}/api/v3/integration/notifications` });
 * ```
 */
export function docplannerApi(
  ctx: PullContext<Config>,
  request: Omit<VendorRequest, 'headers'> & { headers?: Record<string, string> },
): Promise<VendorResponse> {
  return oauth.request(ctx, request);
}

/**
 * What a 404 of the notifications endpoint says. `empty`: Docplanner's "queue empty" answer
 * (`{"errors":[],"message":"No notifications found"}`, FACTS.md), or in multiple mode one that still
 * carries a `notifications` array. `unsure`: the same `{errors: [], message}` shape in other words:
 * Docplanner serves country domains (docplanner.com, doctoralia.*, znanylekarz.pl, ...) and its
 * sites are in many languages, so the empty queue's words may be localized; but the API's other 404s
 * have that shape too, so it is told by {@link apiAnswers}. `no`: anything else (a wrong URL: an
 * HTML page, another shape, or Symfony's router's `No route found …` for a moved path), which taken
 * for an empty queue had the pull look healthy while the notifications expired after 72 hours.
 */
function emptyQueueAnswer(res: VendorResponse): 'empty' | 'unsure' | 'no' {
  if (res.status !== 404) return 'no';
  const body = res.body;
  if (typeof body === 'string') return /no notifications/i.test(body) ? 'empty' : 'no';
  if (!isJsonObject(body)) return 'no';
  const message = typeof body.message === 'string' ? body.message : undefined;
  if (Array.isArray(body.notifications) || (message !== undefined && /no notifications/i.test(message)))
    return 'empty';
  return message !== undefined &&
    Array.isArray(body.errors) &&
    body.errors.length === 0 &&
    !/^no route found/i.test(message)
    ? 'unsure'
    : 'no';
}

/** Instances (with their API base) whose base {@link apiAnswers} found right, in this process. */
const answeringBases = new Set<string>();
/** Held at most; past it the set starts again (each instance checks once more). */
const MAX_ANSWERING_BASES = 10_000;

/**
 * Whether the instance's API base is Docplanner's integration API, so that a 404 of the
 * notifications endpoint in words the hub does not know ({@link emptyQueueAnswer}: `unsure`) is the
 * empty queue, whatever the language: `GET {base}/api/v3/integration/facilities` (getFacilities,
 * answered `{ "_items": [...] }`). Asked once per instance and base in a process while it answers;
 * a failure that does not answer (5xx, 408, 429, unreachable) is thrown transient, any other answer
 * is false (a wrong URL).
 */
async function apiAnswers(ctx: PullContext<Config>): Promise<boolean> {
  const key = `${ctx.instanceId}\n${apiBase(ctx.config)}`;
  if (answeringBases.has(key)) return true;
  const res = await docplannerApi(ctx, {
    method: 'GET',
    url: `${apiBase(ctx.config)}/api/v3/integration/facilities`,
  });
  const transient = transientFor('facilities endpoint', res);
  if (transient) throw transient;
  if (res.status !== 200 || !isJsonObject(res.body) || !Array.isArray(res.body._items)) return false;
  if (answeringBases.size >= MAX_ANSWERING_BASES) answeringBases.clear();
  answeringBases.add(key);
  return true;
}

/**
 * How often one instance's lag warning is logged at most, per process: a catch-up after an outage
 * pulls one notification a request, and each batch over the threshold logged the same warning (228
 * lines in one container audit's run), burying every other line while the operator reads the first.
 */
export const LAG_WARNING_EVERY_MS = 10 * 60_000;
/** When each instance's lag warning was last logged, in this process. */
const lagWarned = new Map<string, number>();

function batchOf(
  ctx: PullContext<Config>,
  notifications: VendorNotification[],
  more: boolean,
): DocplannerPullBatch {
  const batch: DocplannerPullBatch = { notifications, cursor: null, more };
  let oldest: string | undefined;
  let oldestMs = Number.POSITIVE_INFINITY;
  for (const n of notifications) {
    const ms = n.occurredAt ? Date.parse(n.occurredAt) : Number.NaN;
    if (ms < oldestMs) {
      oldestMs = ms;
      oldest = n.occurredAt;
    }
  }
  if (oldest !== undefined) {
    batch.oldestOccurredAt = oldest;
    const lagMs = Date.now() - oldestMs;
    const warnAfterMs = (ctx.config.pullLagWarningHours ?? DEFAULT_PULL_LAG_WARNING_HOURS) * 3_600_000;
    const now = Date.now();
    if (lagMs > warnAfterMs && now - (lagWarned.get(ctx.instanceId) ?? 0) >= LAG_WARNING_EVERY_MS) {
      lagWarned.set(ctx.instanceId, now);
      ctx.logger.warn(
        {
          instance: ctx.instanceId,
          oldestOccurredAt: oldest,
          lagHours: Math.round(lagMs / 360_000) / 10,
          expiryHours: 72,
        },
        'Docplanner pull is lagging: unpulled notifications expire after 72 hours',
      );
    }
  }
  return batch;
}

function pulled(value: JsonValue): VendorNotification {
  try {
    return toVendorNotification(value, 'pull');
  } catch (error) {
    // Already gone from Docplanner's queue: store it as it came (normalization will mark it failed,
    // visibly) rather than throw and lose the rest of the batch.
    const name =
      isJsonObject(value) && typeof value.name === 'string' && value.name !== '' ? value.name : 'unreadable';
    return {
      type: name,
      dedupeKey: dedupeKeyOf('unreadable', JSON.stringify(value)),
      payload: value,
      meta: { source: 'pull', unreadable: (error as Error).message },
    };
  }
}

/**
 * Takes the next notification(s) off Docplanner's queue. `single` mode asks for one at a time (the
 * documented way) and returns it with `more: true`, so the hub stores each before asking again: a
 * pulled notification is gone from Docplanner.
 *
 * @example
 * ```ts
 * const batch = await fetchNotifications(ctx); // { notifications: [n], more: true, cursor: null }
 * ```
 */
export async function fetchNotifications(ctx: PullContext<Config>): Promise<DocplannerPullBatch> {
  const base = `${apiBase(ctx.config)}/api/v3/integration/notifications`;
  const multiple = ctx.config.pullMode === 'multiple';
  const limit = Math.min(100, Math.max(1, Math.trunc(ctx.config.pullLimit ?? DEFAULT_PULL_LIMIT)));
  const res = await docplannerApi(ctx, {
    method: 'GET',
    url: multiple ? `${base}/multiple?limit=${limit}` : base,
  });
  const emptyAnswer = emptyQueueAnswer(res);
  if (emptyAnswer === 'empty' || (emptyAnswer === 'unsure' && (await apiAnswers(ctx))))
    return batchOf(ctx, [], false);
  const transient = transientFor('notifications endpoint', res);
  if (transient) throw transient;
  if (res.status !== 200) {
    throw ConnectorError.permanent(`Docplanner notifications endpoint answered ${res.status}`, {
      details: { status: res.status },
    });
  }
  if (!multiple) return batchOf(ctx, [pulled(res.body as JsonValue)], true);
  const body = res.body;
  if (!isJsonObject(body) || !Array.isArray(body.notifications)) {
    throw ConnectorError.permanent(
      'Docplanner /notifications/multiple answered without a notifications array',
    );
  }
  const notifications = body.notifications.map(pulled);
  const remaining = typeof body.remaining === 'number' ? body.remaining : notifications.length > 0 ? 1 : 0;
  return batchOf(ctx, notifications, remaining > 0);
}

/** The pull side of the connector. Docplanner keeps no cursor: taking a notification removes it. */
export const pull: PullSpec<Config> = {
  defaultIntervalMs: 30_000,
  fetch: (ctx) => fetchNotifications(ctx),
  // Refused when the instance is saved: it validated, then warned at every pull (an operator audit).
  unavailable: (config) =>
    config.clientId && config.clientSecret
      ? undefined
      : 'pulling needs settings.clientId and settings.clientSecret (the Docplanner API credentials)',
};

/**
 * Asks Docplanner to push again the notifications whose push failed (`POST /notifications/release`,
 * allowed once an hour: a 429 carries Retry-After and is transient). Returns a summary for the
 * instance record.
 *
 * @example
 * ```ts
 * await releaseNotifications(ctx); // 'released 3' (or 'released' when the answer has no count)
 * ```
 */
export async function releaseNotifications(ctx: PullContext<Config>): Promise<string> {
  const res = await docplannerApi(ctx, {
    method: 'POST',
    url: `${apiBase(ctx.config)}/api/v3/integration/notifications/release`,
  });
  const transient = transientFor('release endpoint', res);
  if (transient) throw transient;
  if (res.status < 200 || res.status >= 300) {
    throw ConnectorError.permanent(`Docplanner release endpoint answered ${res.status}`, {
      details: { status: res.status },
    });
  }
  const body = res.body;
  return isJsonObject(body) && typeof body.released === 'number' ? `released ${body.released}` : 'released';
}

/**
 * Push mode's reconciliation: Docplanner's own documents disagree on whether it retries a failed
 * push at all, so the hub calls release every `releaseIntervalMinutes` (default 60). Off without
 * API credentials (the call needs a token) or with `releaseIntervalMinutes: 0`.
 */
export const reconcile: ReconcileSpec<Config> = {
  intervalMs(config) {
    const minutes = config.releaseIntervalMinutes ?? DEFAULT_RELEASE_INTERVAL_MINUTES;
    if (minutes <= 0 || !config.clientId || !config.clientSecret) return undefined;
    return minutes * 60_000;
  },
  run: (ctx) => releaseNotifications(ctx),
};
