import { Ajv2020 } from 'ajv/dist/2020.js';
import * as ajvFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { isSwitchyardError } from './errors/index.ts';
import { eventTypeInfo, eventTypesOf } from './event-types.ts';
import { EVENT_TYPES } from './model.ts';
import {
  ANNOTATION_KEYWORDS,
  assertValidEvent,
  createAjv,
  entitySchemaIds,
  envelopeSchemaId,
  eventSchemaIds,
  getSchemas,
  isNormalizedEventType,
  validateAgainst,
  validateEvent,
} from './validate.ts';

// ajv-formats is CommonJS (validate.ts says why it is read this way).
const addFormats = ((ajvFormats as { default?: unknown }).default ?? ajvFormats) as unknown as (
  ajv: Ajv2020,
) => Ajv2020;

type Obj = Record<string, unknown> & { data: Record<string, unknown> };

function schemaOf(id: string): Record<string, unknown> {
  const schema = getSchemas().find((s) => s.$id === id);
  if (!schema) throw new Error(`no schema ${id}`);
  return schema;
}

/** A fresh copy of the first example of a type's schema. */
function example(type: keyof typeof eventSchemaIds): Obj {
  const examples = schemaOf(eventSchemaIds[type]).examples as Obj[];
  return structuredClone(examples[0]!);
}

describe('event schemas', () => {
  const eventSchemas = getSchemas().filter((s) => s.$id.startsWith('https://switchyard.dev/schemas/events/'));

  it('has one schema per normalized type, each with title, description, vendor events and examples', () => {
    expect(eventSchemas.map((s) => s.$id).sort()).toEqual(Object.values(eventSchemaIds).sort());
    expect(EVENT_TYPES.map((t) => t.type).sort()).toEqual(Object.keys(eventSchemaIds).sort());
    for (const schema of eventSchemas) {
      expect(typeof schema.title, schema.$id).toBe('string');
      expect(typeof schema.description, schema.$id).toBe('string');
      expect(Array.isArray(schema['x-vendor-events']), schema.$id).toBe(true);
      expect((schema.examples as unknown[]).length, schema.$id).toBeGreaterThan(0);
    }
  });

  it('covers every type of the design table', () => {
    for (const type of [
      'appointment.booking_requested',
      'appointment.reschedule_requested',
      'appointment.created',
      'appointment.confirmed',
      'appointment.rescheduled',
      'appointment.updated',
      'appointment.cancelled',
      'appointment.restored',
      'appointment.arrived',
      'appointment.checked_in',
      'appointment.in_progress',
      'appointment.completed',
      'appointment.no_show',
      'appointment.status_reverted',
      'slot.blocked',
      'slot.block_moved',
      'slot.unblocked',
      'slot.changed',
      'schedule.updated',
      'schedule.activated',
      'schedule.deactivated',
      'document.created',
      'document.updated',
      'document.deleted',
      'asset.created',
      'asset.updated',
      'asset.deleted',
      'process.completed',
      'hub.test',
    ]) {
      expect(isNormalizedEventType(type), type).toBe(true);
    }
  });

  it.each(
    eventSchemas.flatMap((s) => (s.examples as unknown[]).map((ex, i) => [`${s.$id} #${i}`, ex] as const)),
  )('example %s is a valid event of its own type', (name, ex) => {
    expect(validateEvent(ex)).toEqual({ valid: true });
    const id = name.split(' ')[0]!;
    expect((ex as { type: string }).type).toBe(id.replace(/^.*\/events\//, '').replace(/\.json$/, ''));
    // The subject names the entity by its hub id (envelope.subject), never by the vendor's: the
    // process.completed example showed a Quable import code where the hub sends a UUID.
    const { type, subject } = ex as { type: string; subject: string };
    // A test event is never stored, so it has no feed position (pipeline/test-event.ts).
    if (type === 'hub.test') expect(ex).not.toHaveProperty('sequence');
    // An approval request's deadline is in the approver's copy only, never in the stored event.
    expect((ex as { data: object }).data).not.toHaveProperty('deadline');
    if (type !== 'hub.test')
      expect(subject).toMatch(/^[a-z_]+\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

describe('validateEvent', () => {
  it('reports every problem at once, with JSON Pointer paths from the event root', () => {
    const event = example('appointment.cancelled');
    delete event.data.status;
    event.data.start = '10 March 2026, 11:30';
    event.data.surprise = true;
    event.time = 'yesterday';
    delete event.source;
    const result = validateEvent(event);
    expect(result.valid).toBe(false);
    if (result.valid) return;
    expect(result.errors).toEqual(
      expect.arrayContaining([
        { path: '/source', message: 'is required' },
        { path: '/time', message: 'must match format "date-time"' },
        { path: '/data/status', message: 'is required' },
        { path: '/data/start', message: 'must match format "date-time"' },
        { path: '/data/surprise', message: 'is not allowed here (unknown property)' },
      ]),
    );
    expect(result.errors).toHaveLength(5);
  });

  it('reports nested data problems with their full path', () => {
    const event = example('appointment.created');
    (event.data.vendorIds as Array<Record<string, unknown>>)[0]!.value = 2087456123;
    (event.data.patient as Record<string, unknown>).birthDate = '14/05/1987';
    const result = validateEvent(event);
    expect(result).toEqual({
      valid: false,
      errors: [
        { path: '/data/vendorIds/0/value', message: 'must be string' },
        { path: '/data/patient/birthDate', message: 'must match format "date"' },
      ],
    });
  });

  it('applies the per-type rules on top of the entity', () => {
    const cancelled = example('appointment.cancelled');
    cancelled.data.status = 'booked';
    expect(validateEvent(cancelled)).toEqual({
      valid: false,
      errors: [{ path: '/data/status', message: 'must be "cancelled"' }],
    });

    const moved = example('appointment.rescheduled');
    delete moved.data.previous;
    expect(validateEvent(moved)).toEqual({
      valid: false,
      errors: [{ path: '/data/previous', message: 'is required' }],
    });

    const updated = example('appointment.updated');
    delete updated.data.changes;
    expect(validateEvent(updated)).toEqual({
      valid: false,
      errors: [{ path: '/data/changes', message: 'is required' }],
    });

    const gate = example('appointment.booking_requested');
    gate.data.kind = 'reschedule';
    expect(validateEvent(gate)).toEqual({
      valid: false,
      errors: [{ path: '/data/kind', message: 'must be "booking"' }],
    });

    const blocked = example('slot.blocked');
    delete blocked.data.end;
    expect(validateEvent(blocked)).toEqual({
      valid: false,
      errors: [{ path: '/data/end', message: 'is required' }],
    });
  });

  it('checks enum values and reports the allowed ones', () => {
    const event = example('appointment.created');
    event.data.status = 'rescheduled';
    expect(validateEvent(event)).toEqual({
      valid: false,
      errors: [
        {
          path: '/data/status',
          message:
            'must be one of "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow", "entered-in-error", "checked-in", "waitlist"',
        },
      ],
    });
  });

  it('rejects an unknown type with a coded message, and still checks the envelope', () => {
    const event = example('appointment.created');
    event.type = 'appointment.teleported';
    delete event.subject;
    const result = validateEvent(event);
    expect(result).toEqual({
      valid: false,
      errors: [
        { path: '/subject', message: 'is required' },
        {
          path: '/type',
          message: 'SY_EVENT_UNKNOWN_TYPE: "appointment.teleported" is not a normalized event type',
        },
      ],
    });
  });

  it('validates data against the schema of the type named, not any schema that fits', () => {
    const event = example('hub.test');
    event.type = 'appointment.created';
    const result = validateEvent(event);
    expect(result.valid).toBe(false);
    if (result.valid) return;
    expect(result.errors).toEqual(
      expect.arrayContaining([
        { path: '/data/id', message: 'is required' },
        { path: '/data/message', message: 'is not allowed here (unknown property)' },
      ]),
    );
  });

  it('rejects values that are not objects', () => {
    for (const value of [null, 'appointment.created', 42, []]) {
      expect(validateEvent(value)).toEqual({
        valid: false,
        errors: [{ path: '', message: expect.any(String) }],
      });
    }
  });

  it('escapes JSON Pointer tokens in property names', () => {
    const event = example('hub.test');
    event.data['a/b~c'] = 1;
    expect(validateEvent(event)).toEqual({
      valid: false,
      errors: [{ path: '/data/a~1b~0c', message: 'is not allowed here (unknown property)' }],
    });
  });
});

describe('assertValidEvent', () => {
  it('passes a valid event through', () => {
    expect(() => assertValidEvent(example('slot.blocked'))).not.toThrow();
  });

  it('throws SY_EVENT_INVALID with every error in details', () => {
    const event = example('appointment.arrived');
    event.data.status = 'booked';
    event.specversion = '0.3';
    try {
      assertValidEvent(event);
      expect.unreachable();
    } catch (error) {
      expect(isSwitchyardError(error)).toBe(true);
      if (!isSwitchyardError(error)) return;
      expect(error.code).toBe('SY_EVENT_INVALID');
      expect(error.status).toBe(422);
      expect(error.details?.errors).toEqual([
        { path: '/specversion', message: 'must be "1.0"' },
        { path: '/data/status', message: 'must be "arrived"' },
      ]);
      expect(error.message).toContain('/data/status');
    }
  });

  it('throws SY_EVENT_UNKNOWN_TYPE when the type is the only problem', () => {
    const event = example('hub.test');
    event.type = 'hub.ping';
    expect(() => assertValidEvent(event)).toThrow(expect.objectContaining({ code: 'SY_EVENT_UNKNOWN_TYPE' }));
  });
});

describe('validateAgainst', () => {
  it('validates against an entity, a common definition or the envelope', () => {
    const data = example('appointment.created').data;
    expect(validateAgainst(entitySchemaIds.appointment, data)).toEqual({ valid: true });
    expect(validateAgainst(entitySchemaIds.slot, data)).toMatchObject({ valid: false });
    expect(
      validateAgainst('https://switchyard.dev/schemas/common.json#/$defs/Timestamp', '2026-03-10T11:30:00'),
    ).toEqual({
      valid: false,
      errors: [{ path: '', message: 'must match format "date-time"' }],
    });
    expect(validateAgainst(envelopeSchemaId, example('hub.test'))).toEqual({ valid: true });
  });

  it('throws SY_EVENT_SCHEMA_UNKNOWN for an id no core schema has', () => {
    expect(() => validateAgainst('https://switchyard.dev/schemas/nope.json', {})).toThrow(
      expect.objectContaining({ code: 'SY_EVENT_SCHEMA_UNKNOWN' }),
    );
  });
});

describe('getSchemas and createAjv', () => {
  it('returns copies the caller may change without affecting validation', () => {
    const schemas = getSchemas();
    const envelope = schemas.find((s) => s.$id === envelopeSchemaId)!;
    (envelope.properties as Record<string, unknown>).specversion = { const: 'changed' };
    expect(validateEvent(example('hub.test'))).toEqual({ valid: true });
    expect(getSchemas().find((s) => s.$id === envelopeSchemaId)!.properties).toHaveProperty(
      'specversion.const',
      '1.0',
    );
  });

  it('gives an ajv that compiles schemas referencing core ones and knows x-secret', () => {
    const ajv = createAjv();
    const validate = ajv.compile({
      type: 'object',
      required: ['token', 'since'],
      properties: {
        token: { type: 'string', 'x-secret': true },
        since: { $ref: 'https://switchyard.dev/schemas/common.json#/$defs/Timestamp' },
      },
    });
    expect(validate({ token: 't', since: '2026-03-10T11:30:00Z' })).toBe(true);
    expect(validate({ token: 't', since: 'soon' })).toBe(false);
  });

  it('rejects unknown keywords (strict mode), so a typo in a schema is caught', () => {
    expect(() => createAjv().compile({ type: 'object', requird: ['x'] })).toThrow(/unknown keyword/);
  });

  it('compiles every published schema in ajv’s full strict mode, as a subscriber’s own ajv does', () => {
    // What docs/events.md tells a downstream system to do, with ajv's defaults otherwise: `strict:
    // true` includes strictRequired, which refuses a `required` name its schema object does not
    // define in `properties` (https://ajv.js.org/strict-mode.html#defined-required-properties). Six
    // event schemas refining their entity with `allOf: [{$ref}, {required}]` did not compile there.
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv);
    ajv.addVocabulary([...ANNOTATION_KEYWORDS]);
    for (const schema of getSchemas()) ajv.addSchema(schema);
    for (const schema of getSchemas()) expect(() => ajv.getSchema(schema.$id), schema.$id).not.toThrow();
    const rescheduled = example('appointment.rescheduled');
    expect(ajv.getSchema(eventSchemaIds['appointment.rescheduled'])!(rescheduled.data)).toBe(true);
    delete rescheduled.data.previous;
    expect(ajv.getSchema(eventSchemaIds['appointment.rescheduled'])!(rescheduled.data)).toBe(false);
  });
});

describe('event type info', () => {
  it('describes each type', () => {
    expect(eventTypeInfo('appointment.rescheduled')).toMatchObject({
      entity: 'appointment',
      vendorEvents: expect.arrayContaining(['Docplanner booking-moved']),
      schemaId: 'https://switchyard.dev/schemas/events/appointment.rescheduled.json',
    });
    expect(eventTypeInfo('appointment.teleported')).toBeUndefined();
    expect(eventTypesOf('slot')).toEqual([
      'slot.blocked',
      'slot.block_moved',
      'slot.unblocked',
      'slot.changed',
    ]);
    expect(eventTypesOf('approval_request')).toEqual([
      'appointment.booking_requested',
      'appointment.reschedule_requested',
    ]);
  });

  it('names at least one vendor event for every type except those the hub makes itself', () => {
    for (const info of EVENT_TYPES) {
      // hub.test and the command outcomes (command.succeeded / command.failed) come from the hub.
      if (info.entity === 'hub' || info.entity === 'command') expect(info.vendorEvents).toEqual([]);
      else expect(info.vendorEvents.length, info.type).toBeGreaterThan(0);
    }
  });
});
