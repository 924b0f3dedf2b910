/**
 * Every connector fixture (real vendor payloads, see each connector's fixtures/README.md) normalized
 * in memory the way the connectors' own tests do (parse → normalize → the hub's completion), so the
 * FHIR tests can map every event the shipped connectors produce. Test-only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Connector, EventEnvelope, JsonObject, VendorRequest, VendorResponse } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { shippedConnectors } from '../connectors.ts';

const CLOCKWISE_API_KEY = 'cw-api-key-abcdef0123456789';

/** A valid config per shipped connector, as in its conformance test. */
const configs: Record<string, unknown> = {
  bookingbug: { basicAuth: { username: 'switchyard-bb', password: 'bb-push-password-0123456789' } },
  clockwisemd: {
    auth: { mode: 'either', key: 'cw-hook-key-0123456789abcdef' },
    apiKey: CLOCKWISE_API_KEY,
    apiBaseUrl: 'https://api.clockwisemd.test/v1',
  },
  docplanner: {
    domain: 'znanylekarz.pl',
    clientId: '1234_conformance',
    clientSecret: 'client-secret-for-tests',
    pushAuth: { headerName: 'X-Docplanner-Key', apiKey: 'dp-push-key-7f3a9c2e41' },
  },
  'instinctive-notes': { auth: { secret: 'in-test-secret-0123456789abcdef' } },
  quable: { authorization: 'Bearer qb-test-0123456789abcdef' },
};

/** Clockwise.MD's REST API as its fixtures need it (the recorded appointments in `src/__api__`). */
function clockwiseApi(req: VendorRequest): VendorResponse {
  const id = /\/appointments\/(\d+)$/.exec(req.url)?.[1];
  try {
    const url = new URL(
      `../../../connectors/clockwisemd/src/__api__/appointment-${id}.json`,
      import.meta.url,
    );
    const body = JSON.parse(readFileSync(url, 'utf8'));
    return { status: 200, headers: { 'content-type': 'application/json' }, body };
  } catch {
    return { status: 404, headers: {}, body: { error: 'not found' } };
  }
}

/** One normalized event and the fixture it came from. */
export interface FixtureEvent {
  connector: string;
  fixture: string;
  event: EventEnvelope;
}

function fixtureFiles(connector: string): string[] {
  const dir = new URL(`../../../connectors/${connector}/fixtures/`, import.meta.url);
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/**
 * Normalizes every fixture of a connector in file-name order with one shared context (so stateful
 * connectors see earlier fixtures), trying each push route until one parses. Fixtures a connector
 * ignores or refuses out of order yield nothing; the caller checks enough events came out.
 *
 * @example
 * ```ts
 * const events = await connectorFixtureEvents('docplanner');
 * ```
 */
export async function connectorFixtureEvents(name: string): Promise<FixtureEvent[]> {
  const connector = shippedConnectors.find((c) => c.name === name) as Connector<unknown> | undefined;
  if (!connector?.push) throw new Error(`no push connector ${name}`);
  const config = configs[name];
  const ctx = memoryNormalizeContext<unknown>({
    instanceId: `${name}-fhir`,
    config,
    ...(name === 'clockwisemd' ? { vendorApi: clockwiseApi } : {}),
    finalAttempt: true,
  });
  const out: FixtureEvent[] = [];
  for (const file of fixtureFiles(name)) {
    const url = new URL(`../../../connectors/${name}/fixtures/${file}`, import.meta.url);
    const body = JSON.parse(readFileSync(url, 'utf8')) as JsonObject;
    for (const route of connector.push.routes) {
      let notifications: ReturnType<NonNullable<Connector['push']>['parse']>;
      try {
        notifications = await connector.push.parse(inboundRequest({ body, route: route.name }), config);
      } catch {
        continue;
      }
      for (const notification of notifications) {
        let result: Awaited<ReturnType<Connector['normalize']>>;
        try {
          result = await connector.normalize(notification, ctx);
        } catch {
          continue;
        }
        result.events.forEach((draft, index) => {
          const event = completeEvent(draft, { instanceId: ctx.instanceId, connector, notification, index });
          out.push({ connector: name, fixture: file, event });
        });
      }
      break;
    }
  }
  return out;
}

/** The names of the shipped connectors that take pushes. */
export const pushConnectorNames: readonly string[] = shippedConnectors
  .filter((c) => c.push)
  .map((c) => c.name);
