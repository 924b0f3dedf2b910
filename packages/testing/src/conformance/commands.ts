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
 * handler that decides more (a booking answered 5xx that may exist, "already cancelled") is tested
 * beside it; this is the floor.
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
}

/** One finding of the command checks. */
export interface CommandConformanceResult {
  type: string;
  ok: boolean;
  message: string;
}

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
    only: commandTypes.filter((t) => commandTypeInfo(t)?.target === 'instance'),
    expect: (r) =>
      r.outcome !== 'transient'
        ? `expected transient (createdOutcome: a booking answered without the JSON naming it is not done, nor refused), got ${r.outcome}`
        : undefined,
  },
];

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
        vendorApi: () => answer,
      });
      let problem: string | undefined;
      let result: CommandResult | undefined;
      let thrown = false;
      try {
        result = await handler(
          { id: `conformance-${type}`, type, data: sample.data, subject: 'appointment/conformance' } as never,
          ctx,
        );
      } catch (error) {
        // As the hub takes it (packages/server/src/commands/commands.ts): a ConnectorError by its kind.
        if (!isConnectorError(error)) {
          problem = `the handler threw ${(error as Error)?.name ?? 'a non-Error'}: ${(error as Error)?.message} (the hub would retry it as transient, forever)`;
        } else {
          thrown = true;
          result =
            error.kind === 'transient'
              ? {
                  outcome: 'transient',
                  message: error.message,
                  ...(error.retryAfterMs !== undefined ? { retryAfterMs: error.retryAfterMs } : {}),
                }
              : { outcome: 'permanent', message: error.message };
        }
      }
      if (result !== undefined) {
        problem = check(result, thrown);
        if (problem === undefined && ctx.vendorRequests.length === 0)
          problem = 'the handler made no vendor call';
      }
      results.push({
        type,
        ok: problem === undefined,
        message: `the vendor answered ${what}: ${problem ?? 'as expected'}`,
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
      it(`${type}: transient on 503 and 429 (Retry-After kept), permanent on 422 with the answer kept${type === 'appointment.book' ? ', transient on a 200 HTML page' : ''}`, async () => {
        const failures = (await run()).filter((r) => r.type === type && !r.ok).map((r) => r.message);
        expect(failures, `command conformance of ${type} failed`).toEqual([]);
      });
    }
  });
}
