import { SwitchyardError } from '../errors/index.ts';
import { isCommandType } from '../validate.ts';
import type { Connector, ConnectorDefinition } from './types.ts';

const NAME = /^[a-z][a-z0-9-]{1,39}$/;

/**
 * Checks a connector definition and returns it frozen. Every mistake is reported at once with what
 * to change, so a connector author sees them when the package is first imported, not in production.
 *
 * @example
 * ```ts
 * export const acme = defineConnector<AcmeConfig>({ name: 'acme', version: '1.0.0', ... });
 * ```
 */
export function defineConnector<Config>(definition: ConnectorDefinition<Config>): Connector<Config> {
  const problems: string[] = [];
  if (!NAME.test(definition.name)) {
    problems.push(
      `name ${JSON.stringify(definition.name)} must match ${NAME} (lowercase letters, digits, dashes)`,
    );
  }
  if (typeof definition.version !== 'string' || definition.version === '')
    problems.push('version is required');
  if (definition.configSchema?.type !== 'object')
    problems.push('configSchema must be a JSON Schema with type "object"');
  if (!definition.push && !definition.pull) problems.push('a connector needs push, pull, or both');
  if (definition.reconcile && !definition.push) problems.push('reconcile is for push mode: it needs push');
  if (definition.push) {
    const names = new Set<string>();
    const paths = new Set<string>();
    if (definition.push.routes.length === 0) problems.push('push.routes must list at least one route');
    if (typeof definition.push.credentials !== 'function')
      problems.push(
        "push.credentials must be a function naming where an instance's credentials travel (headers, query, params), so the hub can redact them",
      );
    if (definition.push.verifyBody !== undefined && typeof definition.push.verifyBody !== 'function')
      problems.push('push.verifyBody must be a function when given');
    if (definition.push.sign !== undefined && typeof definition.push.sign !== 'function')
      problems.push('push.sign must be a function when given');
    if (typeof definition.encode !== 'function')
      problems.push(
        'encode must be a function with push: simulators push normalized events through it, and the conformance suite round-trips them',
      );
    for (const route of definition.push.routes) {
      if (names.has(route.name)) problems.push(`push route name ${JSON.stringify(route.name)} is used twice`);
      if (paths.has(route.path)) problems.push(`push route path ${JSON.stringify(route.path)} is used twice`);
      if (route.path.startsWith('/'))
        problems.push(`push route path ${JSON.stringify(route.path)} must not start with "/"`);
      names.add(route.name);
      paths.add(route.path);
    }
  }
  const vendorTypes = new Set<string>();
  for (const row of definition.eventMap ?? []) {
    if (vendorTypes.has(row.vendorType)) problems.push(`eventMap lists ${row.vendorType} twice`);
    vendorTypes.add(row.vendorType);
  }
  for (const type of Object.keys(definition.commands ?? {})) {
    if (!isCommandType(type))
      problems.push(`commands names ${JSON.stringify(type)}, which is no command type`);
  }
  if (problems.length > 0) {
    throw new SwitchyardError(
      'SY_CONNECTOR_DEFINITION',
      `connector ${JSON.stringify(definition.name)} is invalid: ${problems.join('; ')}`,
      { details: { problems } },
    );
  }
  return Object.freeze({ ...definition, eventMap: Object.freeze([...(definition.eventMap ?? [])]) });
}
