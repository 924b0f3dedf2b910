import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Connector,
  ConnectorError,
  type EventEnvelope,
  hookUrlOf,
  type InboundRequest,
  inboundRequestHead,
  isConnectorError,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  type PresentedCredentials,
  type PullSpec,
  type PushCredentials,
  type ValidationResult,
  type VendorNotification,
  type VendorRequest,
  type VendorResponse,
  validateEvent,
} from '@switchyard/core';
import {
  inboundRequest,
  type MemoryNormalizeContext,
  type MemoryStateStore,
  memoryNormalizeContext,
  type VendorApi,
} from '../connector-context.ts';
import { completeEvent } from './complete-event.ts';

/** Where a credential goes on an {@link InboundRequest} (the SDK's `PresentedCredentials`). */
export type CredentialParts = PresentedCredentials;

/**
 * One vendor payload file and what it must normalize to: for a push connector, exactly what the
 * vendor POSTs; for a pull-only connector, exactly what the vendor answers to one poll (one page of
 * its list or queue endpoint).
 */
export interface ConformanceFixture {
  /**
   * File name relative to `fixturesDir`, e.g. `slot-booked.json`. A `.form` file is a form-encoded
   * push (`action=scheduled&id=1`), sent byte for byte with `content-type:
   * application/x-www-form-urlencoded` unless `headers` name another type.
   */
  file: string;
  /** Push route name; default `default` (or the connector's first route). */
  route?: string;
  params?: Record<string, string>;
  /** Non-auth headers; `content-type: application/json` (a `.form` file: the form type) is added unless given. */
  headers?: Record<string, string>;
  /**
   * Normalized types in order (all notifications of the file together); `'ignored'`: every
   * notification normalizes to an ignored result; `'test'`: a connectivity check that parses to no
   * notification at all (for a pull-only connector: a page that yields none, such as an empty one).
   */
  expect: string[] | 'ignored' | 'test';
  description?: string;
  /**
   * Pull-only: the cursor this fixture's `fetch` is called with, where it is not
   * {@link ConformancePull.cursor}'s (a page of a list the round asks after the first one).
   */
  cursor?: string | null;
}

/**
 * The receive time of every request the kit builds, unless `receivedAt` is given: signatures made by
 * `sign` and the tolerance window of the replay-window check are measured from it. A fixed time keeps
 * dedupe keys and signatures reproducible from run to run.
 */
export const DEFAULT_CONFORMANCE_RECEIVED_AT = new Date('2026-01-15T10:00:00Z');

/** The `server.publicUrl` of the kit's requests ({@link ConformanceOptions.publicUrl}). */
export const DEFAULT_CONFORMANCE_PUBLIC_URL = 'https://hub.example.com';

/**
 * How much later the dedupe-stable check parses each request again (36 days 13:59:59, so with the
 * default receive time at 2026-02-20T23:59:59Z: another month, another day, another hour).
 */
export const CONFORMANCE_REPARSE_DELAY_MS = ((36 * 24 + 13) * 3600 + 59 * 60 + 59) * 1000;

/**
 * The credential cases the kit sends. Without `sign` each case is the {@link CredentialParts} put on
 * the request as they are; with `sign` a case is whatever your `sign` hook signs with (typically
 * `{ secret }`), and `missing` is always sent as it is (no signature at all).
 */
export interface ConformanceCredentials<K> {
  /** Must be accepted. */
  good: K;
  /**
   * Each must fail with ConnectorError kind `auth`. Give a record to name the cases in reports
   * (`{ 'rotated-out secret': { secret: '…' } }`); list items are named by their values.
   */
  wrong: K[] | Record<string, K>;
  /** Sent unsigned, as is; must fail with kind `auth`. */
  missing: CredentialParts;
}

/** What {@link ConformanceOptions.sign} is told about the request it signs. */
export interface SigningContext {
  /**
   * The credential case: `good`, a wrong case's name, or a near-miss such as
   * `credential.secret with its last character changed`.
   */
  case: string;
  /**
   * When the vendor signs: the request's `receivedAt`, except in the replay-window check, which
   * signs earlier than it receives.
   */
  signedAt: Date;
}

/**
 * Signs one request the kit is about to send, as the vendor would: gets the request without
 * credentials (route, params, headers, the exact `rawBody`, `receivedAt`) and the credential case,
 * and returns the parts to add (usually the signature header).
 *
 * @example
 * ```ts
 * sign: (request, credential, { signedAt }) => ({
 *   headers: { 'x-acme-signature': signTimestamped(credential.secret, request.rawBody, { timestamp: signedAt }) },
 * }),
 * ```
 */
export type SignRequest<K> = (
  request: InboundRequest,
  credential: K,
  context: SigningContext,
) => CredentialParts;

/**
 * What {@link checkConformance} checks a connector against. `K` is the credential case type:
 * {@link CredentialParts} (the default) for vendors that send a static credential, or what your
 * `sign` hook takes for vendors that sign each request.
 */
export interface ConformanceOptions<C, K = CredentialParts> {
  connector: Connector<C>;
  /** A valid instance config with test secrets. */
  config: C;
  /** Folder of vendor payload files (`.json`; `.form` for form-encoded pushes); every `.json` and `.form` file in it (recursively) must be listed in `fixtures`. */
  fixturesDir: URL | string;
  /** Required for a connector with push routes; a pull-only connector has no push to authenticate. */
  credentials?: ConformanceCredentials<K>;
  /**
   * For vendors that sign each request (an HMAC over the body, a timestamp): called for every request
   * the kit sends with a credential (auth, near-miss, replay-window, malformed, normalize, round-trip),
   * so each carries a real signature over its own body. The kit admits a request as the hub does:
   * `push.authenticate` on the head (reading `rawBody` there throws), then `push.verifyBody` on the
   * full request, where the signature is checked. Without it, credential cases must be
   * {@link CredentialParts}.
   */
  sign?: SignRequest<K>;
  /**
   * For vendors whose signatures carry a timestamp: the tolerance the connector is configured with.
   * The replay-window check then signs a request `toleranceSeconds - 1` s before it is received (must
   * pass) and `toleranceSeconds + 1` s before (a replay: must be refused), the same two offsets
   * after it (a vendor clock ahead: the window counts either way), and sends that stale
   * request re-dated, its timestamp (Unix seconds or milliseconds, wherever `sign` wrote it)
   * rewritten to the receive time with the signature kept (must be refused: the signature has to
   * cover the timestamp). Needs `sign`.
   */
  replayWindow?: { toleranceSeconds: number };
  /**
   * A secret rotation, for connectors that accept the secret being replaced beside the new one
   * (`previousSigningSecret`): `config` is {@link ConformanceOptions.config} with the previous secret
   * added, `previous` the credential case made with it. The auth check then requires `previous` to
   * pass under `rotation.config` (the vendor still signs with the old secret), the good credential
   * to pass there too, and `previous` to be refused under the main `config` (a secret removed from
   * the settings is no longer accepted).
   */
  rotation?: { config: C; previous: K };
  /** The receive time of every request; default {@link DEFAULT_CONFORMANCE_RECEIVED_AT}. */
  receivedAt?: Date;
  /** Processed in order with one shared memory context (stateful vendors). */
  fixtures: ConformanceFixture[];
  vendorApi?: VendorApi;
  /** Extra connector-specific malformed bodies. */
  malformedBodies?: Array<string | Buffer>;
  /** Instance id used in the context and events; default `conformance`. */
  instanceId?: string;
  /**
   * The hub's `server.publicUrl` in the requests the kit builds: each gets `hookUrl` (the URL the
   * vendor was told, which a vendor such as Square signs) = this + `/hooks/{instanceId}` + the
   * route's path. Default {@link DEFAULT_CONFORMANCE_PUBLIC_URL}.
   */
  publicUrl?: string;
  /**
   * Set when the vendor's notifications carry neither an id nor a timestamp, so the only way to tell
   * a genuine repeat (Clockwise.MD `checkin`, `undo_checkin`, `checkin`) from a redelivery is when it
   * arrived: the dedupe-stable check then re-parses at the same receive time (still from another
   * address). Document the trade-off in the connector's docs.
   */
  dedupeKeysUseReceiveTime?: boolean;
  /** For a pull-only connector (no `push`): how the kit answers `pull.fetch`'s vendor calls. */
  pull?: ConformancePull;
}

/**
 * How the kit drives a pull-only connector: each fixture is what the vendor answers one poll, and
 * the kit calls `pull.fetch(ctx, cursor)` with a context whose `http` answers from the fixture.
 */
export interface ConformancePull {
  /** The cursor each fixture's `fetch` is called with; default `null` (the first poll). */
  cursor?: string | null;
  /**
   * Answers one vendor call `fetch` makes while a fixture is pulled; undefined falls through to
   * `vendorApi`. Default: every call is answered 200 with the fixture as its JSON body. Give one
   * when `fetch` makes other calls first (an OAuth2 token) or reads a page from a wrapper. The
   * `malformed` and `pull-errors` checks call it too, with their broken page as the fixture: the
   * call answered with that page is the poll and gets the broken answer, the others theirs.
   *
   * @example
   * ```ts
   * answer: (request, fixture) =>
   *   request.url.endsWith('/oauth/token')
   *     ? { status: 200, headers: {}, body: { access_token: 't', expires_in: 3600 } }
   *     : { status: 200, headers: {}, body: fixture.json },
   * ```
   */
  answer?: (request: VendorRequest, fixture: { file: string; json: JsonValue }) => VendorResponse | undefined;
}

/** The check groups, in report order. */
export const conformanceChecks = [
  'fixtures',
  'auth',
  'auth-near-miss',
  'replay-window',
  'credentials',
  'malformed',
  'normalize',
  'event-valid',
  'event-map',
  'dedupe-stable',
  'dedupe-distinct',
  'round-trip',
  'gate',
  'pull-errors',
] as const;
export type ConformanceCheck = (typeof conformanceChecks)[number];

/** What each check group verifies (the `it` titles of `describeConformance`). */
export const conformanceCheckTitles: Record<ConformanceCheck, string> = {
  fixtures: 'every fixture file is listed and reads (a .json one parses as JSON)',
  auth: 'good credentials pass authenticate (on the head) and verifyBody; wrong and missing ones fail with kind auth',
  'auth-near-miss':
    'credentials (or signatures, or signed bodies) differing by one character, or only in length, are refused',
  'replay-window':
    'a request signed just inside the tolerance window (either way) passes; one signed just outside is refused, and so is that one re-dated',
  credentials:
    'push.credentials(config) names every header, query and path parameter the good credentials travel in',
  malformed: 'malformed bodies give bad_request or no notification, never another exception',
  normalize: 'fixtures normalize to the expected types (or are ignored)',
  'event-valid': 'every normalized event, completed by the hub, validates against the core schemas',
  'event-map': 'produced types are declared in the eventMap row of their vendor type',
  'dedupe-stable': 'dedupe keys are stable across re-parsing the same request',
  'dedupe-distinct': 'dedupe keys differ across different notifications',
  'round-trip': 'encode → parse → normalize gives back the same type and subject',
  gate: 'gate notifications get a 2xx answer on approve and a non-2xx on refuse',
  'pull-errors':
    'pull-only: pull.fetch throws a transient ConnectorError when the vendor answers 5xx or 429 (Retry-After as retryAfterMs)',
};

/** Check groups that only push connectors have something to check for. */
const PUSH_ONLY_CHECKS: ReadonlySet<ConformanceCheck> = new Set([
  'auth',
  'auth-near-miss',
  'replay-window',
  'credentials',
  'round-trip',
  'gate',
]);

/**
 * The check groups that apply to a connector: a push connector is driven through its routes (all
 * but `pull-errors`), a pull-only one through `pull.fetch` (no auth, credentials, round trip or gate).
 * `describeConformance` skips the others rather than pass them with nothing checked.
 *
 * @example
 * ```ts
 * applicableChecks(pullOnlyConnector); // ['fixtures', 'malformed', 'normalize', …, 'pull-errors']
 * ```
 */
export function applicableChecks(connector: { push?: unknown }): ConformanceCheck[] {
  return conformanceChecks.filter((check) =>
    connector.push ? check !== 'pull-errors' : !PUSH_ONLY_CHECKS.has(check),
  );
}

/** One finding. */
export interface ConformanceResult {
  check: ConformanceCheck;
  fixture?: string;
  ok: boolean;
  message: string;
}

/** All findings; `ok` when none failed. */
export interface ConformanceReport {
  ok: boolean;
  results: ConformanceResult[];
  failures: ConformanceResult[];
}

interface LoadedFixture {
  fixture: ConformanceFixture;
  raw: Buffer;
  /** The payload as JSON; for a `.form` fixture its fields as an object of strings. */
  json: JsonValue;
  /** A form-encoded fixture (`.form`). */
  form: boolean;
}

/** The content type of a form-encoded push, and what `.form` fixtures are sent with. */
const FORM_TYPE = 'application/x-www-form-urlencoded';

/** Whether a request's headers declare a form body (header names in any case). */
function declaresForm(headers: Record<string, string> | undefined): boolean {
  const type = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === 'content-type')?.[1];
  return type?.toLowerCase().startsWith(FORM_TYPE) === true;
}

/**
 * The body of an encoded push as the vendor sends it: a form when `encode` declares the form
 * content type (its body an object of scalar fields), else JSON.
 */
function encodedBody(encoded: { headers?: Record<string, string>; body: JsonValue }): Buffer {
  if (declaresForm(encoded.headers) && isJsonObject(encoded.body)) {
    const fields = Object.entries(encoded.body)
      .filter(([, value]) => value !== null && typeof value !== 'object')
      .map(([name, value]): [string, string] => [name, String(value)]);
    return Buffer.from(new URLSearchParams(fields).toString());
  }
  return Buffer.from(JSON.stringify(encoded.body));
}

interface ProducedEvent {
  fixture: string;
  event: EventEnvelope;
  /** The state store as it was before the fixture was normalized (round trips replay from there). */
  stateBefore: MemoryStateStore;
}

/**
 * Runs the connector conformance checks and returns every finding; it never throws for a connector
 * fault. Fixtures are processed in order with one shared in-memory context; round trips run on a
 * fork of it (the aliases as they are, the state as it was before the fixture), so they neither see
 * later fixtures' state nor disturb the sequence.
 *
 * @example
 * ```ts
 * const report = await checkConformance({ connector, config, fixturesDir: new URL('../fixtures/', import.meta.url), credentials, fixtures });
 * if (!report.ok) console.log(report.failures);
 * ```
 */
export async function checkConformance<C, K = CredentialParts>(
  options: ConformanceOptions<C, K>,
): Promise<ConformanceReport> {
  const results: ConformanceResult[] = [];
  const add = (check: ConformanceCheck, ok: boolean, message: string, fixture?: string) => {
    results.push(fixture === undefined ? { check, ok, message } : { check, fixture, ok, message });
  };
  const { connector, config, sign } = options;
  const push = connector.push;
  if (!push) {
    if (connector.pull) await checkPullOnly(options, connector.pull, add);
    return report(results);
  }
  const credentials = options.credentials;
  if (!credentials) {
    add(
      'auth',
      false,
      `connector ${connector.name} has push routes: give credentials ({ good, wrong, missing }) for the kit to send`,
    );
    return report(results);
  }
  const instanceId = options.instanceId ?? 'conformance';
  const defaultRoute =
    push.routes.find((r) => r.name === 'default')?.name ?? push.routes[0]?.name ?? 'default';
  const receivedAt = options.receivedAt ?? DEFAULT_CONFORMANCE_RECEIVED_AT;
  const good: Sent<K> = { case: 'good', credential: credentials.good };
  /** Where the good credentials travelled, over every request built with them (checked under `credentials`). */
  const carried = { headers: new Set<string>(), query: new Set<string>(), params: new Set<string>() };
  const publicUrl = options.publicUrl ?? DEFAULT_CONFORMANCE_PUBLIC_URL;
  /** The route's URL as the vendor was told it: its `:param` segments filled in. */
  const routeHookUrl = (routeName: string, params: Readonly<Record<string, string>>) => {
    const path = (push.routes.find((r) => r.name === routeName)?.path ?? '')
      .split('/')
      .filter((segment) => segment !== '')
      .map((segment) =>
        encodeURIComponent(segment.startsWith(':') ? (params[segment.slice(1)] ?? '') : segment),
      );
    return hookUrlOf(
      publicUrl,
      `/hooks/${encodeURIComponent(instanceId)}${path.length > 0 ? `/${path.join('/')}` : ''}`,
    );
  };
  const unsigned = (parts: RequestParts, body: Buffer, at: Date, creds: CredentialParts = {}) =>
    inboundRequest({
      hookUrl: routeHookUrl(parts.route ?? defaultRoute, { ...parts.params, ...creds.params }),
      route: parts.route ?? defaultRoute,
      params: { ...parts.params, ...creds.params },
      query: { ...creds.query },
      headers: { 'content-type': 'application/json', ...parts.headers, ...creds.headers },
      body: Buffer.from(body),
      receivedAt: at,
    });
  /** The request as the vendor sends it with one credential case: signed by `sign` when given. */
  const build = (
    parts: RequestParts,
    body: Buffer,
    sent: Sent<K>,
    at = receivedAt,
    signedAt = at,
  ): InboundRequest => {
    if ('parts' in sent) return unsigned(parts, body, at, sent.parts);
    let creds: CredentialParts;
    if (!sign) creds = asCredentialParts(sent.credential, sent.case);
    else {
      try {
        creds = sign(unsigned(parts, body, at), sent.credential, { case: sent.case, signedAt });
      } catch (error) {
        throw new Error(`sign() threw for credential case ${sent.case}: ${describeError(error)}`);
      }
    }
    if (sent === good) {
      for (const name of Object.keys(creds.headers ?? {})) carried.headers.add(name.toLowerCase());
      for (const name of Object.keys(creds.query ?? {})) carried.query.add(name);
      for (const name of Object.keys(creds.params ?? {})) carried.params.add(name);
    }
    return unsigned(parts, body, at, creds);
  };
  /**
   * What the hub does with a push before parsing it: `authenticate` on the head (the body is not
   * read yet; reading `rawBody` throws), then `verifyBody`, when the connector has one, on the full
   * request. Throws what they throw.
   */
  const admit = (request: InboundRequest, settings: C = config) => {
    push.authenticate(inboundRequestHead(request), settings);
    push.verifyBody?.(request, settings);
  };
  const wrongCases: Array<Sent<K>> = Array.isArray(credentials.wrong)
    ? credentials.wrong.map((credential) => ({ case: describeCase(credential), credential }))
    : Object.entries(credentials.wrong).map(([name, credential]) => ({ case: name, credential }));

  // fixtures: listed, present, JSON.
  const loaded = await loadFixtures(options, add);

  // auth: per distinct route, with the first fixture of that route as the template.
  const templates = new Map<string, LoadedFixture | undefined>();
  for (const item of loaded)
    templates.set(
      item.fixture.route ?? defaultRoute,
      templates.get(item.fixture.route ?? defaultRoute) ?? item,
    );
  if (templates.size === 0) templates.set(defaultRoute, undefined);
  for (const [route, template] of templates) {
    const parts = { route, params: template?.fixture.params, headers: template?.fixture.headers };
    const body = template?.raw ?? Buffer.from('{}');
    const label = template?.fixture.file;
    const attempt = (sent: Sent<K>, requestBody = body, signedAt = receivedAt) =>
      authOutcome(() => admit(build(parts, requestBody, sent, receivedAt, signedAt)));
    const goodOutcome = attempt(good);
    add(
      'auth',
      goodOutcome === 'passed',
      `route ${route}: good credentials ${describeOutcome(goodOutcome)}`,
      label,
    );
    if (wrongCases.length === 0) {
      add('auth', false, 'credentials.wrong is empty: list at least one wrong credential', label);
    }
    for (const wrong of wrongCases) {
      const outcome = attempt(wrong);
      add(
        'auth',
        outcome === 'auth',
        `route ${route}: wrong credential ${wrong.case} ${describeOutcome(outcome)}`,
        label,
      );
    }
    const missing = attempt({ case: 'missing', parts: credentials.missing });
    add('auth', missing === 'auth', `route ${route}: missing credentials ${describeOutcome(missing)}`, label);
    // rotation: the previous secret accepted while configured, and only then.
    if (options.rotation) {
      const rotation = options.rotation;
      const previous: Sent<K> = {
        case: 'previous (the secret being rotated out)',
        credential: rotation.previous,
      };
      for (const [sent, settings, where, must] of [
        [previous, rotation.config, 'during the rotation (rotation.config)', 'passed'],
        [good, rotation.config, 'during the rotation (rotation.config)', 'passed'],
        [previous, config, 'once it is removed from the settings (config)', 'auth'],
      ] as const) {
        const outcome = authOutcome(() => admit(build(parts, body, sent), settings));
        add(
          'auth',
          outcome === must,
          `route ${route}: ${sent === good ? 'good credentials' : 'the previous secret'} ${where} ${describeOutcome(outcome)}`,
          label,
        );
      }
    }
    // push.sign: what the connector presents for the config under test is accepted (`switchyard
    // push` sends what it returns).
    const presented = push.sign;
    if (presented) {
      const outcome = authOutcome(() =>
        admit(unsigned(parts, body, receivedAt, presented(unsigned(parts, body, receivedAt), config))),
      );
      add(
        'auth',
        outcome === 'passed',
        `route ${route}: the credentials push.sign(request, config) presents ${describeOutcome(outcome)}`,
        label,
      );
    }

    /** The good credential signed at `signedAt`, or undefined when sign throws (reported under auth). */
    const goodSignedAt = (
      signWith: NonNullable<typeof sign>,
      signedAt: Date,
    ): CredentialParts | undefined => {
      try {
        return signWith(unsigned(parts, body, receivedAt), good.credential, { case: 'good', signedAt });
      } catch {
        return undefined;
      }
    };

    // auth-near-miss: without sign, the good credential varied; with sign, the credential varied
    // before signing, the signature varied after signing, and the body changed after signing.
    const variants: Array<{ sent: Sent<K>; body?: Buffer }> = [];
    if (!sign) {
      for (const variant of nearMisses(asCredentialPartsOrEmpty(good.credential))) {
        variants.push({ sent: { case: `good credential ${variant.what}`, parts: variant.creds } });
      }
    } else {
      for (const [what, credential] of credentialVariants(good.credential)) {
        variants.push({ sent: { case: `credential${what}`, credential } });
      }
      const signed = goodSignedAt(sign, receivedAt);
      for (const variant of nearMisses(signed ?? {})) {
        variants.push({ sent: { case: `signature ${variant.what}`, parts: variant.creds } });
      }
      if (signed) {
        variants.push({
          sent: {
            case: 'a good signature over a body changed after signing (one trailing space)',
            parts: signed,
          },
          body: Buffer.concat([body, Buffer.from(' ')]),
        });
      }
    }
    if (variants.length === 0) add('auth-near-miss', true, 'no credential values to vary', label);
    for (const variant of variants) {
      const outcome = attempt(variant.sent, variant.body);
      add(
        'auth-near-miss',
        outcome === 'auth',
        `route ${route}: ${variant.sent.case} ${describeOutcome(outcome)}`,
        label,
      );
    }

    // replay-window: signed just inside, then just outside the declared tolerance.
    if (options.replayWindow) {
      const tolerance = options.replayWindow.toleranceSeconds;
      if (!sign) {
        add(
          'replay-window',
          false,
          'replayWindow needs sign(request, credential, context) to sign at a given time',
          label,
        );
      } else {
        const inside = attempt(good, body, new Date(receivedAt.getTime() - (tolerance - 1) * 1000));
        add(
          'replay-window',
          inside === 'passed',
          `route ${route}: good credentials signed ${tolerance - 1} s before receipt (inside the ${tolerance} s window) ${describeOutcome(inside)}`,
          label,
        );
        const staleAt = new Date(receivedAt.getTime() - (tolerance + 1) * 1000);
        const replay = attempt(good, body, staleAt);
        add(
          'replay-window',
          replay === 'auth',
          `route ${route}: good credentials signed ${tolerance + 1} s before receipt (a replay outside the ${tolerance} s window) ${describeOutcome(replay)}`,
          label,
        );
        // Either way, as the core verifiers and §5 measure it: a vendor whose clock runs ahead
        // within the window is accepted, one ahead beyond it refused (a one-sided check accepts a
        // future-dated signature until that future comes).
        for (const [offset, must] of [
          [tolerance - 1, 'passed'],
          [tolerance + 1, 'auth'],
        ] as const) {
          const ahead = attempt(good, body, new Date(receivedAt.getTime() + offset * 1000));
          add(
            'replay-window',
            ahead === must,
            `route ${route}: good credentials signed ${offset} s after receipt (a vendor clock ahead, ${must === 'passed' ? 'inside' : 'outside'} the ${tolerance} s window) ${describeOutcome(ahead)}`,
            label,
          );
        }
        // The same capture re-dated: its timestamp rewritten to the receive time, the signature
        // kept. A verifier whose HMAC does not cover the timestamp checks the window on a value
        // anyone can change, and passes the check above all the same.
        const stale = goodSignedAt(sign, staleAt);
        const redated = stale && redate(stale, staleAt, receivedAt);
        if (redated) {
          const outcome = attempt({ case: 'good, re-dated', parts: redated }, body);
          add(
            'replay-window',
            outcome === 'auth',
            `route ${route}: a capture signed ${tolerance + 1} s before receipt, its timestamp rewritten to the receive time and its signature kept (the signature must cover the timestamp), ${describeOutcome(outcome)}`,
            label,
          );
        }
      }
    }

    // malformed: parse alone (authenticate and verifyBody are exercised by the checks above).
    for (const { what, body: bad, lenient } of malformedBodies(
      template?.json,
      options.malformedBodies ?? [],
      template?.form ?? false,
    )) {
      let message: string;
      let ok: boolean;
      try {
        const notifications = push.parse(build(parts, bad, good), config);
        ok = notifications.length === 0 || lenient;
        message = `${what}: parse returned ${notifications.length} notification(s)`;
      } catch (error) {
        ok = isConnectorError(error) && error.kind === 'bad_request';
        message = `${what}: parse threw ${describeError(error)}`;
      }
      add('malformed', ok, `route ${route}: ${message}`, label);
    }
  }

  const reparsedAt = options.dedupeKeysUseReceiveTime
    ? receivedAt
    : new Date(receivedAt.getTime() + CONFORMANCE_REPARSE_DELAY_MS);
  const { ctx, produced } = await checkNormalization(
    options,
    loaded,
    {
      verb: 'parse',
      first: async (item) => push.parse(build(item.fixture, item.raw, good), config),
      again: async (item) =>
        push.parse({ ...build(item.fixture, item.raw, good, reparsedAt), sourceIp: '203.0.113.7' }, config),
    },
    add,
  );

  // round-trip: encode each event, push it back, normalize on a fork of the context.
  for (const { fixture, event, stateBefore } of produced) {
    const label = `${event.type} ${event.subject}`;
    try {
      // defineConnector refuses a push connector without encode; a definition not made with it
      // (a plain object) is reported here.
      if (!connector.encode) throw new Error('the connector has push routes but no encode');
      const encoded = connector.encode(event, config);
      const request = build(
        { route: encoded.route, params: encoded.params, headers: encoded.headers },
        encodedBody(encoded),
        good,
      );
      admit(request);
      const notifications = push.parse(request, config);
      const fork: MemoryNormalizeContext<C> = memoryNormalizeContext({
        instanceId,
        config,
        vendorApi: options.vendorApi,
        aliases: ctx.aliases.clone(),
        state: stateBefore.clone(),
      });
      const back: Array<{ type: string; subject: string }> = [];
      for (const notification of notifications) {
        const result = await connector.normalize(notification, fork);
        back.push(...result.events.map((e) => ({ type: e.type, subject: e.subject })));
      }
      const found = back.some((e) => e.type === event.type && e.subject === event.subject);
      add(
        'round-trip',
        found,
        found
          ? `${label} round-trips`
          : `${label} came back as [${back.map((e) => `${e.type} ${e.subject}`).join(', ')}]`,
        fixture,
      );
    } catch (error) {
      add('round-trip', false, `${label}: ${describeError(error)}`, fixture);
    }
  }

  // gate: answers for approve and refuse.
  for (const item of loaded) {
    let notifications: VendorNotification[];
    try {
      notifications = push.parse(build(item.fixture, item.raw, good), config).filter((n) => n.gate);
    } catch {
      continue; // reported under normalize
    }
    for (const notification of notifications) {
      if (!connector.gate) {
        add(
          'gate',
          false,
          `${notification.type} is a gate but the connector has no gate spec`,
          item.fixture.file,
        );
        continue;
      }
      try {
        const approve = connector.gate.respond({ outcome: 'approve', reason: 'approved' }, config);
        const refuse = connector.gate.respond({ outcome: 'refuse', reason: 'refused' }, config);
        connector.gate.matchKey(notification);
        const ok = isSuccess(approve.status) && !isSuccess(refuse.status);
        add(
          'gate',
          ok,
          `${notification.type}: approve → ${approve.status}, refuse → ${refuse.status}`,
          item.fixture.file,
        );
      } catch (error) {
        add('gate', false, `${notification.type}: ${describeError(error)}`, item.fixture.file);
      }
    }
  }

  // credentials: every place the good credentials travelled is declared, so the hub redacts it.
  let declared: PushCredentials | undefined;
  try {
    declared = push.credentials(config);
  } catch (error) {
    add('credentials', false, `push.credentials(config) threw ${describeError(error)}`);
  }
  if (declared) {
    const lists = {
      headers: new Set((declared.headers ?? []).map((name) => name.toLowerCase())),
      query: new Set(declared.query ?? []),
      params: new Set(declared.params ?? []),
    };
    const where = { headers: 'header', query: 'query parameter', params: 'path parameter' } as const;
    let count = 0;
    for (const place of ['headers', 'query', 'params'] as const) {
      for (const name of carried[place]) {
        count += 1;
        const ok = lists[place].has(name);
        add(
          'credentials',
          ok,
          ok
            ? `${where[place]} ${name} is declared`
            : `the good credentials travel in ${where[place]} ${name}, which push.credentials(config).${place} does not name (declared: ${[...lists[place]].join(', ') || 'none'}): the hub would not redact it`,
        );
      }
    }
    if (count === 0) add('credentials', true, 'the good credentials carry no header or parameter');
  }

  return report(results);
}

/** Where the normalize and dedupe checks get a fixture's notifications: parse (push) or fetch (pull). */
interface NotificationSource {
  /** `parse` or `pull.fetch`, for messages. */
  verb: string;
  first(item: LoadedFixture): Promise<VendorNotification[]>;
  /** The same fixture again: re-parsed later from another address, or pulled again. */
  again(item: LoadedFixture): Promise<VendorNotification[]>;
}

/**
 * normalize, event-valid, event-map (fixtures in order with one shared context), dedupe-stable and
 * dedupe-distinct. Returns the context and what was produced, for the round trips.
 */
async function checkNormalization<C, K>(
  options: ConformanceOptions<C, K>,
  loaded: LoadedFixture[],
  source: NotificationSource,
  add: (check: ConformanceCheck, ok: boolean, message: string, fixture?: string) => void,
): Promise<{ ctx: MemoryNormalizeContext<C>; produced: ProducedEvent[] }> {
  const { connector, config } = options;
  const instanceId = options.instanceId ?? 'conformance';
  // normalize, event-valid, event-map: fixtures in order with one shared context.
  const ctx = memoryNormalizeContext({ instanceId, config, vendorApi: options.vendorApi });
  const produced: ProducedEvent[] = [];
  const keysByFixture = new Map<string, string[]>();
  for (const item of loaded) {
    const { fixture } = item;
    const name = fixture.file;
    let notifications: VendorNotification[];
    try {
      notifications = await source.first(item);
    } catch (error) {
      add('normalize', false, `${source.verb} threw ${describeError(error)}`, name);
      continue;
    }
    const shapeProblems = notifications.flatMap((n, i) => notificationProblems(n, i));
    if (shapeProblems.length > 0) {
      add('normalize', false, shapeProblems.join('; '), name);
      continue;
    }
    keysByFixture.set(
      name,
      notifications.map((n) => n.dedupeKey),
    );
    if (fixture.expect === 'test') {
      add(
        'normalize',
        notifications.length === 0,
        notifications.length === 0
          ? 'a connectivity check: no notification'
          : `expected no notification (test request), ${source.verb} returned ${notifications.map((n) => n.type).join(', ')}`,
        name,
      );
      continue;
    }
    if (notifications.length === 0) {
      add(
        'normalize',
        false,
        `${source.verb} returned no notification; expected ${JSON.stringify(fixture.expect)}`,
        name,
      );
      continue;
    }
    const stateBefore = ctx.state.clone();
    const types: string[] = [];
    const ignoredReasons: Array<string | undefined> = [];
    let failed = false;
    for (const notification of notifications) {
      let result: Awaited<ReturnType<typeof connector.normalize>>;
      try {
        result = await connector.normalize(notification, ctx);
      } catch (error) {
        add('normalize', false, `normalize(${notification.type}) threw ${describeError(error)}`, name);
        failed = true;
        break;
      }
      ignoredReasons.push(result.ignored);
      const row = connector.eventMap.find((r) => r.vendorType === notification.type);
      result.events.forEach((draft, index) => {
        types.push(draft.type);
        const event = completeEvent(draft, { instanceId, connector, notification, index });
        produced.push({ fixture: name, event, stateBefore });
        let verdict: ValidationResult;
        try {
          verdict = validateEvent(event);
        } catch (error) {
          verdict = {
            valid: false,
            errors: [{ path: '', message: `validateEvent threw ${describeError(error)}` }],
          };
        }
        add(
          'event-valid',
          verdict.valid,
          verdict.valid
            ? `${event.type} ${event.subject} is valid`
            : `${event.type} is invalid: ${verdict.errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`,
          name,
        );
        const declared = row?.normalizedTypes.includes(draft.type) ?? false;
        add(
          'event-map',
          declared,
          declared
            ? `${notification.type} → ${draft.type} is declared`
            : row
              ? `eventMap row ${notification.type} does not list ${draft.type} (lists ${row.normalizedTypes.join(', ') || 'nothing'})`
              : `eventMap has no row for vendor type ${notification.type}, which produced ${draft.type}`,
          name,
        );
      });
    }
    if (failed) continue;
    if (fixture.expect === 'ignored') {
      const allIgnored =
        types.length === 0 && ignoredReasons.every((reason) => typeof reason === 'string' && reason !== '');
      add(
        'normalize',
        allIgnored,
        allIgnored
          ? `ignored: ${ignoredReasons.join('; ')}`
          : `expected an ignored result (with a reason), got ${types.length > 0 ? `events ${types.join(', ')}` : 'no events and no reason'}`,
        name,
      );
    } else {
      const same = JSON.stringify(types) === JSON.stringify(fixture.expect);
      add(
        'normalize',
        same,
        same
          ? `→ ${types.join(', ') || '(no events)'}`
          : `expected [${fixture.expect.join(', ')}], got [${types.join(', ')}]${ignoredReasons.some(Boolean) ? ` (ignored: ${ignoredReasons.filter(Boolean).join('; ')})` : ''}`,
        name,
      );
    }
  }

  // dedupe-stable: the same request parsed again (later, from another address), or the same page
  // pulled again, gives the same keys.
  for (const item of loaded) {
    const first = keysByFixture.get(item.fixture.file);
    if (!first || first.length === 0) continue;
    try {
      const again = (await source.again(item)).map((n) => n.dedupeKey);
      const same = JSON.stringify(again) === JSON.stringify(first);
      add(
        'dedupe-stable',
        same,
        same ? `${first.length} key(s) stable` : `keys changed: ${first.join(', ')} → ${again.join(', ')}`,
        item.fixture.file,
      );
    } catch (error) {
      add('dedupe-stable', false, `${source.verb} again threw ${describeError(error)}`, item.fixture.file);
    }
  }

  // dedupe-distinct: no key shared by two notifications.
  const owners = new Map<string, string[]>();
  for (const [file, keys] of keysByFixture) {
    for (const key of keys) owners.set(key, [...(owners.get(key) ?? []), file]);
  }
  for (const [key, files] of owners) {
    if (files.length > 1)
      add('dedupe-distinct', false, `dedupe key ${key} is shared by ${files.join(', ')}`, files[0]);
  }
  if (owners.size > 0 && [...owners.values()].every((files) => files.length === 1)) {
    add('dedupe-distinct', true, `${owners.size} distinct keys`);
  }

  return { ctx, produced };
}

/**
 * A pull-only connector: each fixture is one vendor answer to a poll, pulled through `pull.fetch`
 * with a context whose `http` answers from it (`options.pull.answer`, else the fixture as a 200
 * JSON body). Checks normalization and dedupe keys as for pushes, that broken answers give a
 * `ConnectorError` or no notification (malformed), and that 5xx and 429 answers are transient
 * (pull-errors). Auth, credentials, round trips and gates are push matters and are not checked.
 */
async function checkPullOnly<C, K>(
  options: ConformanceOptions<C, K>,
  pull: PullSpec<C>,
  add: (check: ConformanceCheck, ok: boolean, message: string, fixture?: string) => void,
): Promise<void> {
  const { config } = options;
  const instanceId = options.instanceId ?? 'conformance';
  const cursor = options.pull?.cursor ?? null;
  /** A fresh pull context per fetch: a page pulled again starts from the same (empty) state. */
  const fetchWith = async (vendorApi: VendorApi, from: string | null = cursor) =>
    (await pull.fetch(memoryNormalizeContext({ instanceId, config, vendorApi }), from)).notifications;
  /**
   * Answers the calls of one pull whose poll the vendor answers with `page`: `options.pull.answer`
   * (given `page` as the fixture), else the page as a 200 JSON body; undefined falls to vendorApi.
   */
  const answering =
    (file: string, page: JsonValue): VendorApi =>
    async (request) => {
      const answered = options.pull?.answer
        ? options.pull.answer(request, { file, json: page })
        : { status: 200, headers: { 'content-type': 'application/json' }, body: page };
      if (answered !== undefined) return answered;
      if (options.vendorApi) return options.vendorApi(request);
      throw ConnectorError.transient(`no conformance answer for ${request.method ?? 'GET'} ${request.url}`);
    };
  const fromFixture = (item: LoadedFixture) =>
    fetchWith(
      answering(item.fixture.file, item.json),
      item.fixture.cursor === undefined ? cursor : item.fixture.cursor,
    );
  const loaded = await loadFixtures(options, add);
  await checkNormalization(
    options,
    loaded,
    { verb: 'pull.fetch', first: fromFixture, again: fromFixture },
    add,
  );

  // malformed: the vendor answers 200 with something that is not a page; fetch must say so with a
  // ConnectorError or find nothing, never crash with a TypeError. A page shaped like a fixture with
  // every value null may give notifications, but only well-formed ones (a type, a dedupe key).
  const template = loaded[0];
  const broken: Array<{ what: string; body: JsonValue | string; lenient?: boolean }> = [
    { what: 'a text body', body: 'Service temporarily unavailable' },
    { what: 'JSON null', body: null },
    { what: 'a JSON array', body: [] },
    { what: 'an empty JSON object', body: {} },
    ...(template === undefined
      ? []
      : [
          {
            what: `${template.fixture.file} with every value null`,
            body: nulled(template.json),
            lenient: true,
          },
        ]),
    ...(options.malformedBodies ?? []).map((raw, i) => ({
      what: `connector malformed body #${i + 1}`,
      body: jsonOrText(raw),
    })),
  ];
  for (const { what, body, lenient } of broken) {
    let ok: boolean;
    let message: string;
    try {
      // Through options.pull.answer with the broken body as the page: a call it answers first (an
      // OAuth2 token) is answered as usual, so the poll itself gets the broken body.
      const notifications = await fetchWith(answering(template?.fixture.file ?? '', body));
      const problems = notifications.flatMap((n, i) => notificationProblems(n, i));
      ok = problems.length === 0 && (lenient === true || notifications.length === 0);
      message = `${what}: pull.fetch returned ${notifications.length} notification(s)${problems.length > 0 ? ` (${problems.join('; ')})` : ''}`;
    } catch (error) {
      ok = isConnectorError(error);
      message = `${what}: pull.fetch threw ${describeError(error)}`;
    }
    add('malformed', ok, message, template?.fixture.file);
  }

  // pull-errors: the vendor's outage and rate limit are transient, the rate limit's wait honoured.
  const outcomes: Array<{ what: string; answer: VendorResponse; retryAfterMs?: number }> = [
    { what: '503', answer: { status: 503, headers: {}, body: 'unavailable' } },
    {
      what: '429 with Retry-After: 7',
      answer: { status: 429, headers: { 'retry-after': '7' }, body: '' },
      retryAfterMs: 7000,
    },
  ];
  // The call answered with this stand-in page is the poll, and gets the outage; the others (an
  // OAuth2 token) are answered as usual, or the check would only ever see the token call fail.
  const poll: JsonObject = {};
  for (const { what, answer, retryAfterMs } of outcomes) {
    try {
      const answerCall = answering(template?.fixture.file ?? '', poll);
      const notifications = await fetchWith(async (request) => {
        const answered = await answerCall(request);
        return answered.body === poll ? answer : answered;
      });
      add(
        'pull-errors',
        false,
        `the vendor answered ${what}: pull.fetch returned ${notifications.length} notification(s) instead of throwing a transient ConnectorError`,
      );
    } catch (error) {
      const transient = isConnectorError(error) && error.kind === 'transient';
      const waited = retryAfterMs === undefined || (transient && error.retryAfterMs === retryAfterMs);
      add(
        'pull-errors',
        transient && waited,
        transient && !waited
          ? `the vendor answered ${what}: pull.fetch threw a transient error with retryAfterMs ${error.retryAfterMs}, expected ${retryAfterMs} (parseRetryAfter)`
          : `the vendor answered ${what}: pull.fetch threw ${describeError(error)}`,
      );
    }
  }
}

function jsonOrText(raw: string | Buffer): JsonValue | string {
  const text = raw.toString();
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

function report(results: ConformanceResult[]): ConformanceReport {
  const failures = results.filter((r) => !r.ok);
  return { ok: failures.length === 0, results, failures };
}

async function loadFixtures<C, K>(
  options: ConformanceOptions<C, K>,
  add: (check: ConformanceCheck, ok: boolean, message: string, fixture?: string) => void,
): Promise<LoadedFixture[]> {
  const dir =
    typeof options.fixturesDir === 'string' ? options.fixturesDir : fileURLToPath(options.fixturesDir);
  let files: string[];
  try {
    files = await listJsonFiles(dir, dir);
  } catch (error) {
    add('fixtures', false, `cannot read fixturesDir ${dir}: ${(error as Error).message}`);
    return [];
  }
  const listed = new Set(options.fixtures.map((f) => f.file));
  if (options.fixtures.length === 0) add('fixtures', false, 'no fixtures listed');
  for (const file of files) {
    if (!listed.has(file))
      add('fixtures', false, `orphan fixture: ${file} is in the folder but not listed`, file);
  }
  const seen = new Set<string>();
  const loaded: LoadedFixture[] = [];
  for (const fixture of options.fixtures) {
    if (seen.has(fixture.file)) {
      add('fixtures', false, `${fixture.file} is listed twice`, fixture.file);
      continue;
    }
    seen.add(fixture.file);
    let raw: Buffer;
    try {
      raw = await readFile(join(dir, fixture.file));
    } catch {
      add('fixtures', false, `${fixture.file} is listed but not in ${dir}`, fixture.file);
      continue;
    }
    if (fixture.file.endsWith('.form')) {
      // A form-encoded push: sent as the file's bytes, with the form type unless headers say otherwise.
      const fields = Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
      const headers = { 'content-type': FORM_TYPE, ...fixture.headers };
      add('fixtures', true, 'listed and read as a form', fixture.file);
      loaded.push({ fixture: { ...fixture, headers }, raw, json: fields, form: true });
      continue;
    }
    try {
      const json = JSON.parse(raw.toString('utf8')) as JsonValue;
      add('fixtures', true, 'listed and parses', fixture.file);
      loaded.push({ fixture, raw, json, form: false });
    } catch (error) {
      add('fixtures', false, `${fixture.file} is not valid JSON: ${(error as Error).message}`, fixture.file);
    }
  }
  return loaded;
}

async function listJsonFiles(root: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listJsonFiles(root, path)));
    else if (entry.name.endsWith('.json') || entry.name.endsWith('.form'))
      out.push(relative(root, path).split(sep).join('/'));
  }
  return out.sort();
}

type RequestParts = { route?: string; params?: Record<string, string>; headers?: Record<string, string> };

/** One credential case as sent: a case for `sign` (or plain parts without sign), or fixed parts. */
type Sent<K> = { case: string; credential: K } | { case: string; parts: CredentialParts };

const PART_KEYS = new Set(['headers', 'params', 'query']);

function isCredentialParts(value: unknown): value is CredentialParts {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.entries(value).every(
      ([key, v]) => PART_KEYS.has(key) && (v === undefined || (typeof v === 'object' && v !== null)),
    )
  );
}

function asCredentialParts(value: unknown, name: string): CredentialParts {
  if (isCredentialParts(value)) return value;
  throw new Error(
    `credential case ${name} is not request parts ({ headers?, params?, query? }): declare sign(request, credential, context) to turn it into a signature`,
  );
}

function asCredentialPartsOrEmpty(value: unknown): CredentialParts {
  return isCredentialParts(value) ? value : {};
}

/** A wrong case listed without a name is named by its values (test values, never real secrets). */
function describeCase(credential: unknown): string {
  const values: string[] = [];
  if (isCredentialParts(credential)) {
    for (const place of ['headers', 'params', 'query'] as const) {
      for (const [name, value] of Object.entries(credential[place] ?? {})) {
        values.push(`${place}.${name}=${JSON.stringify(shorten(value))}`);
      }
    }
    return values.length === 0 ? '(no credentials)' : values.join(', ');
  }
  return shorten(JSON.stringify(credential) ?? String(credential), 60);
}

function shorten(value: string, max = 32): string {
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

/** The string fields of a signing credential (e.g. `{ secret }`), each varied by one character. */
function credentialVariants<K>(credential: K): Array<[string, K]> {
  if (typeof credential === 'string') {
    return variantsOf(credential).map(([what, next]) => [` ${what}`, next as K]);
  }
  if (typeof credential !== 'object' || credential === null || Array.isArray(credential)) return [];
  const out: Array<[string, K]> = [];
  for (const [key, value] of Object.entries(credential)) {
    if (typeof value !== 'string' || value === '') continue;
    for (const [what, next] of variantsOf(value))
      out.push([`.${key} ${what}`, { ...credential, [key]: next }]);
  }
  return out;
}

type AuthOutcome = 'passed' | 'auth' | string;

function authOutcome(run: () => void): AuthOutcome {
  try {
    run();
    return 'passed';
  } catch (error) {
    if (isConnectorError(error) && error.kind === 'auth') return 'auth';
    return describeError(error);
  }
}

function describeOutcome(outcome: AuthOutcome): string {
  if (outcome === 'passed') return 'were accepted';
  if (outcome === 'auth') return 'were refused (auth)';
  return `threw ${outcome}`;
}

function describeError(error: unknown): string {
  if (isConnectorError(error)) return `ConnectorError(${error.kind}): ${error.message}`;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return `a non-Error value: ${String(error)}`;
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

function notificationProblems(n: VendorNotification, i: number): string[] {
  const problems: string[] = [];
  if (typeof n.type !== 'string' || n.type === '') problems.push(`notification #${i} has no type`);
  if (typeof n.dedupeKey !== 'string' || n.dedupeKey === '')
    problems.push(`notification #${i} has no dedupeKey`);
  try {
    JSON.stringify(n.payload);
  } catch {
    problems.push(`notification #${i} payload is not serializable`);
  }
  return problems;
}

/**
 * Signed parts with every written form of `from` (Unix seconds, Unix milliseconds) replaced by the
 * same form of `to`: what a replayer who cannot sign can still change. Undefined when no part holds
 * the time (nothing to re-date).
 */
function redate(signed: CredentialParts, from: Date, to: Date): CredentialParts | undefined {
  const forms: Array<[string, string]> = [
    [String(from.getTime()), String(to.getTime())],
    [String(Math.floor(from.getTime() / 1000)), String(Math.floor(to.getTime() / 1000))],
  ];
  let changed = false;
  const out: CredentialParts = {};
  for (const place of ['headers', 'params', 'query'] as const) {
    const values = signed[place];
    if (values === undefined) continue;
    out[place] = Object.fromEntries(
      Object.entries(values).map(([name, value]) => {
        // Milliseconds first: the seconds form is a prefix of it.
        const next = forms.reduce((text, [a, b]) => text.split(a).join(b), value);
        if (next !== value) changed = true;
        return [name, next];
      }),
    );
  }
  return changed ? out : undefined;
}

/** Credentials that must be refused: one character changed at the end, one more, one fewer. */
function nearMisses(good: CredentialParts): Array<{ what: string; creds: CredentialParts }> {
  const out: Array<{ what: string; creds: CredentialParts }> = [];
  for (const place of ['headers', 'params', 'query'] as const) {
    for (const [name, value] of Object.entries(good[place] ?? {})) {
      const replace = (next: string) => ({ ...good, [place]: { ...good[place], [name]: next } });
      const basic = /^(basic\s+)(.+)$/i.exec(value);
      const decoded = basic ? Buffer.from(basic[2]!, 'base64').toString('utf8') : undefined;
      if (basic && decoded?.includes(':')) {
        // Base64 tolerates changed padding bits and trailing characters: vary the decoded password.
        const [user, ...rest] = decoded.split(':');
        const password = rest.join(':');
        const encode = (pw: string) => `${basic[1]}${Buffer.from(`${user}:${pw}`).toString('base64')}`;
        for (const [what, pw] of variantsOf(password)) {
          out.push({ what: `${place}.${name} (Basic password ${what})`, creds: replace(encode(pw)) });
        }
        continue;
      }
      for (const [what, next] of variantsOf(value))
        out.push({ what: `${place}.${name} ${what}`, creds: replace(next) });
    }
  }
  return out;
}

function variantsOf(value: string): Array<[string, string]> {
  const variants: Array<[string, string]> = [];
  if (value.length > 0)
    variants.push(['with its last character changed', value.slice(0, -1) + swapChar(value.at(-1)!)]);
  variants.push(['with one character appended', `${value}${swapChar(value.at(-1) ?? 'a')}`]);
  if (value.length > 1) variants.push(['with its last character removed', value.slice(0, -1)]);
  return variants;
}

function swapChar(c: string): string {
  if (/[0-8]/.test(c)) return String(Number(c) + 1);
  if (c === '9') return '0';
  if (/[a-yA-Y]/.test(c)) return String.fromCharCode(c.charCodeAt(0) + 1);
  if (c === 'z') return 'a';
  if (c === 'Z') return 'A';
  return c === 'x' ? 'y' : 'x';
}

/** The built-in malformed bodies (plus the connector's own). `lenient`: any non-crash outcome is fine. */
function malformedBodies(
  template: JsonValue | undefined,
  extra: Array<string | Buffer>,
  form = false,
): Array<{ what: string; body: Buffer; lenient: boolean }> {
  const depth = 5_000;
  const templateText = template === undefined ? '{"event":"x","data":{"id":"1"}}' : JSON.stringify(template);
  const bodies: Array<{ what: string; body: Buffer; lenient: boolean }> = [
    { what: 'empty body', body: Buffer.alloc(0), lenient: false },
    {
      what: 'truncated JSON',
      body: Buffer.from(templateText.slice(0, Math.max(1, Math.floor(templateText.length / 2)))),
      lenient: false,
    },
    { what: 'non-JSON text', body: Buffer.from('this is not JSON at all'), lenient: false },
    {
      what: 'binary garbage',
      body: Buffer.from([0xff, 0xfe, 0x00, 0x81, 0x7b, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x00, 0x9f]),
      lenient: false,
    },
    { what: 'JSON array', body: Buffer.from('[{"id":"1"},{"id":"2"}]'), lenient: false },
    { what: 'empty JSON array', body: Buffer.from('[]'), lenient: false },
    { what: 'JSON string', body: Buffer.from('"slot-booked"'), lenient: false },
    { what: 'JSON number', body: Buffer.from('42'), lenient: false },
    { what: 'JSON null', body: Buffer.from('null'), lenient: false },
    { what: 'JSON true', body: Buffer.from('true'), lenient: false },
    { what: 'empty object', body: Buffer.from('{}'), lenient: false },
    {
      what: `object nested ${depth} deep`,
      body: Buffer.from(`${'{"data":'.repeat(depth)}1${'}'.repeat(depth)}`),
      lenient: false,
    },
    {
      what: `array nested ${depth} deep`,
      body: Buffer.from(`${'['.repeat(depth)}${']'.repeat(depth)}`),
      lenient: false,
    },
  ];
  if (form && isJsonObject(template ?? null)) {
    // A form of the same fields, every value empty (a form has no null), or without its last: a parser
    // may accept them, but must not crash.
    const names = Object.keys(template as JsonObject);
    const emptied = new URLSearchParams(names.map((name): [string, string] => [name, ''])).toString();
    bodies.push({ what: 'form with every value empty', body: Buffer.from(emptied), lenient: true });
    bodies.push({
      what: 'form without its last field',
      body: Buffer.from(emptied.replace(/&[^&]*$/, '')),
      lenient: true,
    });
  } else if (template !== undefined) {
    // Same shape as a real payload, every value null: a parser may accept it, but must not crash.
    bodies.push({
      what: 'fixture with every value null',
      body: Buffer.from(JSON.stringify(nulled(template))),
      lenient: true,
    });
  }
  extra.forEach((body, i) => {
    bodies.push({
      what: `connector malformed body #${i + 1}`,
      body: Buffer.isBuffer(body) ? body : Buffer.from(body),
      lenient: false,
    });
  });
  return bodies;
}

function nulled(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(nulled);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, nulled(v)]));
  }
  return null;
}
