/**
 * Small connectors for the config tests: one with push, pull and gates and secret settings, one
 * push-only, one pull-only. Their schemas exercise nested secrets and local `$ref`s.
 */
import { type Connector, defineConnector, emit } from '@switchyard/core';

const acmeSettings = {
  type: 'object',
  required: ['apiKey', 'baseUrl'],
  additionalProperties: false,
  properties: {
    apiKey: { type: 'string', minLength: 1, 'x-secret': true },
    baseUrl: { type: 'string', format: 'uri' },
    oauth: { $ref: '#/$defs/oauth' },
    region: { type: 'string', enum: ['eu', 'us'], default: 'eu' },
  },
  $defs: {
    oauth: {
      type: 'object',
      additionalProperties: false,
      properties: { clientId: { type: 'string' }, clientSecret: { type: 'string', 'x-secret': true } },
    },
  },
};

/** Push, pull and gates. */
export const acme: Connector = defineConnector({
  name: 'acme',
  version: '1.0.0',
  displayName: 'Acme Booking',
  configSchema: acmeSettings,
  eventMap: [{ vendorType: 'booking.created', normalizedTypes: ['appointment.created'] }],
  push: {
    routes: [{ name: 'default', path: '' }],
    authenticate() {},
    credentials: () => ({}),
    parse: () => [],
  },
  pull: {
    defaultIntervalMs: 60_000,
    fetch: async () => ({ notifications: [], more: false }),
    unavailable: (config) =>
      (config as { region?: string }).region === 'us' ? 'Acme has no queue in the us region' : undefined,
  },
  gate: {
    respond: (decision) => ({ status: decision.outcome === 'approve' ? 200 : 409 }),
    matchKey: () => undefined,
  },
  normalize: async () => emit(),
  encode: () => ({ route: 'default', body: {} }),
});

/** Push only, no required settings. */
export const pushy: Connector = defineConnector({
  name: 'pushy',
  version: '1.0.0',
  displayName: 'Pushy',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { sharedSecret: { type: 'string', 'x-secret': true } },
  },
  eventMap: [],
  push: {
    routes: [{ name: 'default', path: '' }],
    authenticate() {},
    credentials: () => ({}),
    parse: () => [],
  },
  normalize: async () => emit(),
  encode: () => ({ route: 'default', body: {} }),
});

/** Pull only. */
export const pully: Connector = defineConnector({
  name: 'pully',
  version: '1.0.0',
  displayName: 'Pully',
  configSchema: { type: 'object', properties: { token: { type: 'string', 'x-secret': true } } },
  eventMap: [],
  pull: { defaultIntervalMs: 30_000, fetch: async () => ({ notifications: [], more: false }) },
  normalize: async () => emit(),
  encode: () => ({ route: 'default', body: {} }),
});

export const testConnectors: readonly Connector[] = [acme, pushy, pully];
