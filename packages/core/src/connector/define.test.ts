import { describe, expect, it } from 'vitest';
import { isSwitchyardError } from '../errors/index.ts';
import { defineConnector } from './define.ts';
import { ignore } from './helpers.ts';
import type { ConnectorDefinition } from './types.ts';

function valid(): ConnectorDefinition {
  return {
    name: 'acme',
    version: '1.0.0',
    displayName: 'Acme Booking',
    configSchema: { type: 'object', properties: { apiKey: { type: 'string', 'x-secret': true } } },
    eventMap: [{ vendorType: 'booking.created', normalizedTypes: ['appointment.created'] }],
    push: {
      routes: [{ name: 'default', path: '' }],
      authenticate() {},
      credentials: () => ({ headers: ['x-api-key'] }),
      parse: () => [],
    },
    normalize: async () => ignore('test'),
    encode: () => ({ route: 'default', body: {} }),
  };
}

function problemsOf(definition: ConnectorDefinition): string[] {
  try {
    defineConnector(definition);
  } catch (error) {
    if (isSwitchyardError(error) && error.code === 'SY_CONNECTOR_DEFINITION') {
      return error.details?.problems as string[];
    }
    throw error;
  }
  return [];
}

describe('defineConnector', () => {
  it('returns a valid definition frozen', () => {
    const connector = defineConnector(valid());
    expect(connector.name).toBe('acme');
    expect(Object.isFrozen(connector)).toBe(true);
    expect(Object.isFrozen(connector.eventMap)).toBe(true);
  });

  it('accepts a pull-only connector, without encode (it has no push to encode to)', () => {
    const definition = valid();
    delete definition.push;
    delete definition.encode;
    definition.pull = { defaultIntervalMs: 5000, fetch: async () => ({ notifications: [], more: false }) };
    expect(problemsOf(definition)).toEqual([]);
  });

  it('rejects a push connector without encode (its simulator and the round trip need it)', () => {
    const definition = valid();
    delete definition.encode;
    expect(problemsOf(definition)).toEqual([expect.stringContaining('encode must be a function')]);
  });

  it('rejects a bad name', () => {
    for (const name of ['Acme', 'a', '1acme', 'acme_booking', '']) {
      expect(problemsOf({ ...valid(), name })).toEqual([expect.stringContaining('name')]);
    }
  });

  it('rejects a missing version and a config schema that is not an object schema', () => {
    expect(problemsOf({ ...valid(), version: '' })).toEqual(['version is required']);
    expect(problemsOf({ ...valid(), configSchema: { type: 'string' } })).toEqual([
      expect.stringContaining('configSchema'),
    ]);
  });

  it('rejects a connector with neither push nor pull', () => {
    const definition = valid();
    delete definition.push;
    expect(problemsOf(definition)).toEqual(['a connector needs push, pull, or both']);
  });

  it('rejects route mistakes', () => {
    const definition = valid();
    definition.push = {
      ...definition.push!,
      routes: [
        { name: 'default', path: '' },
        { name: 'default', path: 'cancel' },
        { name: 'other', path: 'cancel' },
        { name: 'slash', path: '/x' },
      ],
    };
    expect(problemsOf(definition)).toEqual([
      'push route name "default" is used twice',
      'push route path "cancel" is used twice',
      'push route path "/x" must not start with "/"',
    ]);
    expect(problemsOf({ ...valid(), push: { ...valid().push!, routes: [] } })).toEqual([
      'push.routes must list at least one route',
    ]);
  });

  it('rejects a push connector that does not declare where its credentials travel', () => {
    const push = valid().push!;
    const { credentials: _, ...withoutCredentials } = push;
    expect(problemsOf({ ...valid(), push: withoutCredentials as typeof push })).toEqual([
      expect.stringContaining('push.credentials must be a function'),
    ]);
  });

  it('rejects a push.sign that is not a function', () => {
    const push = valid().push!;
    expect(problemsOf({ ...valid(), push: { ...push, sign: 'x-api-key' as never } })).toEqual([
      'push.sign must be a function when given',
    ]);
    expect(problemsOf({ ...valid(), push: { ...push, sign: () => ({}) } })).toEqual([]);
  });

  it('rejects a vendor type listed twice in eventMap', () => {
    const definition = valid();
    definition.eventMap = [
      { vendorType: 'x', normalizedTypes: [] },
      { vendorType: 'x', normalizedTypes: ['appointment.created'] },
    ];
    expect(problemsOf(definition)).toEqual(['eventMap lists x twice']);
  });

  it('reports every problem at once, naming the connector', () => {
    const definition = { ...valid(), name: 'Bad Name', version: '' };
    delete definition.push;
    expect(() => defineConnector(definition)).toThrow(/connector "Bad Name" is invalid: .*; .*; /);
    expect(problemsOf(definition)).toHaveLength(3);
  });
});
