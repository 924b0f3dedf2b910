/**
 * Every connector fixture (real vendor payloads, see each connector's fixtures/README.md) normalized
 * in memory the way the connectors' own tests do (parse → normalize → the hub's completion), so the
 * FHIR tests can map every event the shipped connectors produce. Test-only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Connector, EventEnvelope, JsonObject, VendorRequest, VendorResponse } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { shippedConnectors } from '../connectors.ts';

/**
 * What a connector's `./testing` entry gives these tests: the settings its fixtures normalize under,
 * where its fixtures are, and, for a connector that enriches from its vendor's API, that API's
 * answers. Every shipped connector's entry is read the same way, so a new connector's fixtures run
 * here as soon as it is registered, with nothing to add in this package.
 */
interface ConnectorTesting {
  fixtureSettings: unknown;
  fixtureUrl(name: string): URL;
  fixtureVendorApi?: (request: VendorRequest) => VendorResponse;
}

async function testingOf(name: string): Promise<ConnectorTesting> {
  const testing = (await import(`@switchyard/connector-${name}/testing`)) as Partial<ConnectorTesting>;
  if (testing.fixtureSettings === undefined || typeof testing.fixtureUrl !== 'function') {
    throw new Error(
      `@switchyard/connector-${name}/testing must export fixtureSettings and fixtureUrl (docs/writing-a-connector.md §12)`,
    );
  }
  return testing as ConnectorTesting;
}

/** One normalized event and the fixture it came from. */
export interface FixtureEvent {
  connector: string;
  fixture: string;
  event: EventEnvelope;
}

function fixtureFiles(dir: URL): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') || f.endsWith('.form'))
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
  const testing = await testingOf(name);
  const config = testing.fixtureSettings;
  const ctx = memoryNormalizeContext<unknown>({
    instanceId: `${name}-fhir`,
    config,
    ...(testing.fixtureVendorApi ? { vendorApi: testing.fixtureVendorApi } : {}),
    finalAttempt: true,
  });
  const out: FixtureEvent[] = [];
  for (const file of fixtureFiles(testing.fixtureUrl(''))) {
    const url = testing.fixtureUrl(file);
    // A `.form` fixture is a form-encoded push, sent as its bytes (as the conformance kit sends it).
    const text = readFileSync(url, 'utf8');
    const request = file.endsWith('.form')
      ? { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: text }
      : { body: JSON.parse(text) as JsonObject };
    for (const route of connector.push.routes) {
      let notifications: ReturnType<NonNullable<Connector['push']>['parse']>;
      try {
        notifications = await connector.push.parse(inboundRequest({ ...request, route: route.name }), config);
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
