import { describe, expect, it } from 'vitest';
import { defineConnector } from './connector/define.ts';
import { commandTypeInfo, commandTypes } from './event-types.ts';
import { COMMAND_TYPES } from './generated/commands.ts';
import { isCommandType, validateCommandData, validateEvent } from './validate.ts';

describe('command schemas', () => {
  it('list every type, each with how it names its target', () => {
    expect(COMMAND_TYPES.map((c) => c.type)).toEqual(commandTypes);
    expect(commandTypes.every(isCommandType)).toBe(true);
    expect(commandTypeInfo('appointment.book')?.target).toBe('instance');
    expect(commandTypeInfo('appointment.cancel')?.target).toBe('subject');
    expect(commandTypeInfo('appointment.teleport')).toBeUndefined();
    expect(isCommandType('appointment.teleport')).toBe(false);
  });

  it('accept the documented examples', async () => {
    const { readFile } = await import('node:fs/promises');
    for (const type of commandTypes) {
      const url = new URL(`../schemas/commands/${type}.schema.json`, import.meta.url);
      const schema = JSON.parse(await readFile(url, 'utf8')) as { examples: { data: unknown }[] };
      expect(validateCommandData(type, schema.examples[0]!.data), type).toEqual({ valid: true });
    }
  });

  it('report every problem with a pointer into data', () => {
    const r = validateCommandData('appointment.reschedule', { start: 'tomorrow', colour: 'red' });
    expect(r.valid).toBe(false);
    expect(r.valid ? [] : r.errors.map((e) => e.path).sort()).toEqual(['/data/colour', '/data/start']);
    expect(validateCommandData('appointment.cancel', { reason: 'patient called' }).valid).toBe(true);
    expect(validateCommandData('appointment.update', {}).valid).toBe(false);
    expect(validateCommandData('appointment.book', { start: '2026-03-10T11:30:00+01:00' }).valid).toBe(false);
  });

  it('validate the outcome events and causedBy on appointment events', () => {
    const envelope = {
      specversion: '1.0',
      id: '0195a3c0-0020-7000-8000-000000000020',
      type: 'command.failed',
      source: 'dp',
      subject: 'command/x',
      time: '2026-03-09T19:45:31Z',
      datacontenttype: 'application/json',
      data: {
        commandId: 'x',
        commandType: 'appointment.cancel',
        instance: 'dp',
        attempts: 1,
        sentBy: 'admin',
        error: { kind: 'permanent', message: 'refused', vendor: { status: 409, body: { m: 1 } } },
      },
      connector: 'docplanner',
      instance: 'dp',
      vendortype: 'command',
    };
    expect(validateEvent(envelope)).toEqual({ valid: true });
    const cancelled = {
      ...envelope,
      type: 'appointment.cancelled',
      subject: 'appointment/a',
      data: { id: 'a', vendorIds: [], status: 'cancelled', causedBy: { commandId: 'x' } },
    };
    expect(validateEvent(cancelled)).toEqual({ valid: true });
  });

  it('defineConnector refuses a handler for an unknown command type', () => {
    const base = {
      name: 'acme',
      version: '1.0.0',
      displayName: 'Acme',
      configSchema: { type: 'object' },
      eventMap: [],
      push: {
        routes: [{ name: 'default', path: '' }],
        authenticate() {},
        credentials: () => ({}),
        parse: () => [],
      },
      normalize: async () => ({ events: [] as [], ignored: 'x' }),
      encode: () => ({ route: 'default', body: {} }),
    };
    expect(() =>
      defineConnector({
        ...base,
        commands: { 'appointment.teleport': async () => ({ outcome: 'done' }) } as never,
      }),
    ).toThrow(/appointment.teleport/);
    expect(
      defineConnector({ ...base, commands: { 'appointment.cancel': async () => ({ outcome: 'done' }) } })
        .commands?.['appointment.cancel'],
    ).toBeTypeOf('function');
  });
});
