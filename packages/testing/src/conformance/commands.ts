/**
 * The command half of the conformance suite: what every connector's command handlers must do with
 * the vendor's answers, whatever the vendor. Given one valid sample command per type the connector
 * handles, each is run with a vendor that answers every call 503, then 429 with `Retry-After: 7`,
 * then 422: the outcome must be `transient`, `transient` with `retryAfterMs: 7000`, and `permanent`
 * keeping the vendor's answer (`commandOutcome` from `@switchyard/core` does all three); an
 * `appointment.book` (any command that creates its entity: `slot.block` too) is also run with a vendor that answers every call 200 with an HTML page (a
 * proxy's or a maintenance page), which must not be `done`: a booking's answer must name what it
 * made (`createdOutcome`). A
 * `ConnectorError` the handler throws (a token call refused) counts as the hub counts it (its kind
 * and `retryAfterMs`); any other exception fails (the hub would retry it forever as transient). A
 * command that creates is also run twice, as the hub runs a command whose answer proved nothing: a
 * first try whose write a gateway answered `503` with `Retry-After`, then a second try (`attempt: 2`,
 * the same `commandState` and instance state) with the vendor still answering 503; the second try
 * must not send the first try's write again (same method and URL), since every lookup it could make
 * was answered 503 too and the first write may have landed: sent again, it books twice. A write that
 * carries the same idempotency key both times (the `Idempotency-Key` header, or where
 * `idempotencyKeyOf` finds it) is the vendor's to deduplicate and passes. A
 * handler that decides more (what its lookup finds, "already cancelled") is tested beside it; this
 * is the floor.
 */
import {
  type CommandDataMap,
  type CommandResult,
  type CommandType,
  type Connector,
  commandTypeInfo,
  commandTypes,
  isConnectorError,
  type JsonObject,
  type VendorRequest,
  type VendorResponse,
  validateCommandData,
} from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { memoryCommandContext } from '../connector-context.ts';

/** One command as the hub hands it to its handler: its data, and the target's ids and state. */
export interface CommandSample<T extends CommandType> {
  data: CommandDataMap[T];
  /** The target's vendor ids at the instance (none for `appointment.book`). */
  vendorIds?: readonly string[];
  /** The target's last known normalized state. */
  current?: JsonObject;
}

/** What {@link checkCommandConformance} checks a connector's commands against. */
export interface CommandConformanceOptions<C> {
  connector: Connector<C>;
  /** A valid instance config with test secrets. */
  config: C;
  /** One valid command per type the connector handles (every handled type needs one). */
  samples: { [T in CommandType]?: CommandSample<T> };
  /**
   * Answers the calls a handler makes before the command's own (an OAuth token, a login), so that
   * the kit's answers (503, 429, 422, an HTML page) reach the call that carries the command out;
   * `undefined` for every other call, which the kit answers. Without it, a connector that logs in
   * first is only ever checked on its login.
   */
  vendorApi?: (request: VendorRequest) => VendorResponse | undefined;
  /**
   * Where the vendor takes a write's idempotency key, for the lost-answer check: a write sent again
   * with the same key is the vendor's to deduplicate. Default: the `Idempotency-Key` header. Square
   * takes it in the JSON body (`idempotency_key`), where the header check never saw it and failed
   * a connector that re-sends safely.
   *
   * @example
   * ```ts
   * idempotencyKeyOf: (request) => (request.json as { idempotency_key?: string } | undefined)?.idempotency_key,
   * ```
   */
  idempotencyKeyOf?: (request: VendorRequest) => string | undefined;
}

/** One finding of the command checks. */
export interface CommandConformanceResult {
  type: string;
  ok: boolean;
  message: string;
}

/** The commands that create their entity (`appointment.book`, `slot.block`): named by `instance`. */
const CREATING: CommandType[] = commandTypes.filter((t) => commandTypeInfo(t)?.target === 'instance');

const ANSWERS: Array<{
  what: string;
  answer: VendorResponse;
  /** Only for these command types (default: every type). */
  only?: CommandType[];
  /** `thrown`: the outcome came from a thrown ConnectorError, which carries no vendor answer. */
  expect: (r: CommandResult, thrown: boolean) => string | undefined;
}> = [
  {
    what: '503',
    answer: { status: 503, headers: {}, body: 'unavailable' },
    expect: (r) => (r.outcome === 'transient' ? undefined : `expected transient, got ${r.outcome}`),
  },
  {
    what: '429 with Retry-After: 7',
    answer: { status: 429, headers: { 'retry-after': '7' }, body: '' },
    expect: (r) =>
      r.outcome !== 'transient'
        ? `expected transient, got ${r.outcome}`
        : r.retryAfterMs !== 7000
          ? `expected retryAfterMs 7000 (parseRetryAfter), got ${r.retryAfterMs}`
          : undefined,
  },
  {
    what: '422',
    answer: { status: 422, headers: {}, body: { message: 'refused by the vendor' } },
    expect: (r, thrown) =>
      r.outcome !== 'permanent'
        ? `expected permanent, got ${r.outcome}`
        : !thrown && r.vendor?.status !== 422
          ? "expected the vendor's answer kept as vendor (status 422)"
          : undefined,
  },
  {
    what: '200 with an HTML page (a proxy or maintenance page)',
    answer: {
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8' },
      body: '<html><body><h1>Down for maintenance</h1></body></html>',
    },
    // Every command that creates its entity (`appointment.book`, `slot.block`): its answer names it.
    only: CREATING,
    expect: (r) =>
      r.outcome !== 'transient'
        ? `expected transient (createdOutcome: a booking answered without the JSON naming it is not done, nor refused), got ${r.outcome}`
        : undefined,
  },
  {
    what: '200 with an HTML page (a proxy or maintenance page)',
    answer: {
      status: 200,
      headers: { 'content-type': 'text/html; charset=utf-8' },
      body: '<html><body><h1>Down for maintenance</h1></body></html>',
    },
    // Every other command: the page is not the vendor's answer, so the write is not known done (a
    // cancel so answered succeeded, the appointment still booked, no notification to come).
    only: commandTypes.filter((t) => !CREATING.includes(t)),
    expect: (r) =>
      r.outcome !== 'transient'
        ? `expected transient (commandOutcome: a 2xx HTML page is a proxy's or a maintenance page's, not the vendor's answer), got ${r.outcome}`
        : undefined,
  },
];

/** A gateway's answer after it forwarded the write (Envoy's): proves nothing about the vendor. */
const GATEWAY_503: VendorResponse = {
  status: 503,
  headers: { 'retry-after': '7', 'content-type': 'text/plain' },
  body: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
};

/** A command outcome as the hub takes it: a returned result, or a thrown ConnectorError by its kind. */
type Ran = { result: CommandResult; thrown: boolean } | { problem: string };

async function runHandler(
  handler: (command: never, ctx: never) => Promise<CommandResult>,
  type: CommandType,
  sample: CommandSample<CommandType>,
  ctx: object,
): Promise<Ran> {
  try {
    const result = await handler(
      { id: `conformance-${type}`, type, data: sample.data, subject: 'appointment/conformance' } as never,
      ctx as never,
    );
    return { result, thrown: false };
  } catch (error) {
    // As the hub takes it (packages/server/src/commands/commands.ts): a ConnectorError by its kind.
    if (!isConnectorError(error)) {
      return {
        problem: `the handler threw ${(error as Error)?.name ?? 'a non-Error'}: ${(error as Error)?.message} (the hub would retry it as transient, forever)`,
      };
    }
    return {
      thrown: true,
      result:
        error.kind === 'transient'
          ? {
              outcome: 'transient',
              message: error.message,
              ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
            }
          : { outcome: 'permanent', message: error.message },
    };
  }
}

const headerIdempotencyKey = (request: VendorRequest) =>
  Object.entries(request.headers ?? {}).find(([name]) => name.toLowerCase() === 'idempotency-key')?.[1];

/**
 * The lost-answer check of a command that creates: after a try whose write got a gateway's 503,
 * the next try, against a vendor still answering 503, must not send that write again. Undefined when
 * it holds (or the first try never reached a write: nothing to repeat).
 */
async function repeatsWriteBlind<C>(
  handler: (command: never, ctx: never) => Promise<CommandResult>,
  type: CommandType,
  sample: CommandSample<CommandType>,
  options: CommandConformanceOptions<C>,
): Promise<string | undefined> {
  const session = options.vendorApi ?? (() => undefined);
  const base = {
    instanceId: 'conformance',
    config: options.config,
    vendorApi: (request: VendorRequest) => session(request) ?? GATEWAY_503,
  };
  const first = memoryCommandContext(base);
  const ran = await runHandler(handler, type, sample, first);
  if ('problem' in ran || ran.result.outcome !== 'transient') return undefined; // reported by the 503 check
  // The call the gateway answered: the last write the connector's own answers (a login) left to the kit.
  const write = first.vendorRequests
    .filter((r) => (r.method ?? 'GET') !== 'GET' && session(r) === undefined)
    .at(-1);
  if (write === undefined) return undefined;
  const second = memoryCommandContext({
    ...base,
    attempt: 2,
    state: first.state,
    commandState: first.commandState,
  });
  await runHandler(handler, type, sample, second);
  const again = second.vendorRequests.find((r) => r.method === write.method && r.url === write.url);
  if (again === undefined) return undefined;
  const idempotencyKey = options.idempotencyKeyOf ?? headerIdempotencyKey;
  const key = idempotencyKey(write);
  if (key !== undefined && idempotencyKey(again) === key) return undefined;
  return `the next try sent ${write.method} ${write.url} again, blind: the first try's answer (a gateway's 503 with Retry-After) does not prove it was not carried out, and the vendor answered every lookup 503 (mark the write in ctx.commandState before it goes out and look it up on a later try, or send an Idempotency-Key: docs/writing-a-connector.md, "Creates whose answer was lost")`;
}

/**
 * Runs the command checks and returns every finding; it never throws for a connector fault.
 *
 * @example
 * ```ts
 * const results = await checkCommandConformance({ connector, config, samples: { 'appointment.cancel': { data: {}, vendorIds: ['42'] } } });
 * ```
 */
export async function checkCommandConformance<C>(
  options: CommandConformanceOptions<C>,
): Promise<CommandConformanceResult[]> {
  const { connector, config } = options;
  const results: CommandConformanceResult[] = [];
  const handled = Object.keys(connector.commands ?? {}) as CommandType[];
  const session = options.vendorApi ?? (() => undefined);
  const samples = options.samples as Record<string, CommandSample<CommandType> | undefined>;
  if (handled.length === 0) results.push({ type: '-', ok: false, message: 'the connector has no commands' });
  for (const type of Object.keys(samples)) {
    if (!handled.includes(type as CommandType)) {
      results.push({
        type,
        ok: false,
        message: `a sample is given for ${type}, which the connector does not handle`,
      });
    }
  }
  for (const type of handled) {
    const sample = samples[type];
    if (!sample) {
      results.push({ type, ok: false, message: `no sample command: every handled type needs one` });
      continue;
    }
    const verdict = validateCommandData(type, sample.data);
    const refused = connector.commandUnsupported?.({ type, data: sample.data } as never, config);
    if (!verdict.valid || refused !== undefined) {
      results.push({
        type,
        ok: false,
        message: verdict.valid
          ? `the sample is refused by commandUnsupported: ${refused}`
          : `the sample is not valid: ${verdict.errors.map((e) => `${e.path || '/'} ${e.message}`).join('; ')}`,
      });
      continue;
    }
    const handler = connector.commands![type]!;
    for (const { what, answer, only, expect: check } of ANSWERS) {
      if (only !== undefined && !only.includes(type)) continue;
      const ctx = memoryCommandContext({
        instanceId: 'conformance',
        config,
        vendorIds: sample.vendorIds ?? [],
        ...(sample.current ? { current: sample.current } : {}),
        vendorApi: (request: VendorRequest) => session(request) ?? answer,
      });
      const ran = await runHandler(handler as never, type, sample, ctx);
      let problem: string | undefined;
      if ('problem' in ran) problem = ran.problem;
      else {
        problem = check(ran.result, ran.thrown);
        if (problem === undefined && ctx.vendorRequests.length === 0)
          problem = 'the handler made no vendor call';
      }
      results.push({
        type,
        ok: problem === undefined,
        message: `the vendor answered ${what}: ${problem ?? 'as expected'}`,
      });
    }
    if (CREATING.includes(type)) {
      const problem = await repeatsWriteBlind(handler as never, type, sample, options);
      results.push({
        type,
        ok: problem === undefined,
        message: `a second try after a gateway's 503: ${problem ?? 'the write was not sent again blind'}`,
      });
    }
  }
  return results;
}

/**
 * Registers the command checks as vitest tests, one per command type. Call it at the top level of
 * a connector's `src/commands.test.ts`.
 *
 * @example
 * ```ts
 * describeCommandConformance({
 *   connector: acmeConnector,
 *   config,
 *   samples: {
 *     'appointment.cancel': { data: { reason: 'patient called' }, vendorIds: ['1001'] },
 *     'appointment.reschedule': { data: { start: '2026-03-11T09:00:00+01:00' }, vendorIds: ['1001'] },
 *   },
 * });
 * ```
 */
export function describeCommandConformance<C>(options: CommandConformanceOptions<C>): void {
  let running: Promise<CommandConformanceResult[]> | undefined;
  const run = () => {
    running ??= checkCommandConformance(options);
    return running;
  };
  const types = [
    ...new Set([...Object.keys(options.connector.commands ?? {}), ...Object.keys(options.samples)]),
  ];
  describe(`command conformance: ${options.connector.name}`, () => {
    for (const type of types.length > 0 ? types : ['-']) {
      const creates = CREATING.includes(type as CommandType);
      it(`${type}: transient on 503 and 429 (Retry-After kept), permanent on 422 with the answer kept${creates ? ', transient on a 200 HTML page, not sent again blind after a 503' : ''}`, async () => {
        const failures = (await run()).filter((r) => r.type === type && !r.ok).map((r) => r.message);
        expect(failures, `command conformance of ${type} failed`).toEqual([]);
      });
    }
  });
}
