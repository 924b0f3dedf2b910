import { describe, expect, it } from 'vitest';
import type { JsonObject, JsonValue } from '../json.ts';
import { knownStateKey, rememberKnownState, withKnownState } from './known-state.ts';
import type { StateStore } from './types.ts';

function memoryState(): StateStore & { map: Map<string, JsonValue> } {
  const map = new Map<string, JsonValue>();
  return {
    map,
    async get<T extends JsonValue>(key: string) {
      return structuredClone(map.get(key)) as T | undefined;
    },
    async set(key: string, value: JsonValue) {
      map.set(key, structuredClone(value));
    },
    async delete(key: string) {
      map.delete(key);
    },
  };
}

const known: JsonObject = {
  id: 'h1',
  status: 'arrived',
  workflowStep: 'arrived',
  patient: { name: 'Ewa Zielińska' },
  service: { id: '556677' },
  insurance: { id: '9' },
};

describe('withKnownState', () => {
  it('keeps known fields the event leaves out; fields it carries replace the known ones whole', () => {
    const data = withKnownState({ id: 'h1', status: 'arrived', patient: { name: 'Ewa Z.' } }, known);
    expect(data).toEqual({ ...known, patient: { name: 'Ewa Z.' } });
  });

  it('never carries event-scoped fields, nor status-bound ones past a status change, nor cleared ones', () => {
    const withEventFields = { ...known, changes: ['x'], previous: { start: 's' }, vendor: { a: 1 } };
    const data = withKnownState({ id: 'h1', status: 'cancelled' }, withEventFields, {
      cleared: ['insurance'],
    });
    expect(data).toEqual({
      id: 'h1',
      status: 'cancelled',
      patient: { name: 'Ewa Zielińska' },
      service: { id: '556677' },
    });
    expect(withKnownState({ id: 'h1', status: 'arrived' }, known).workflowStep).toBe('arrived');
  });

  it('merges nested fields one level deep', () => {
    const data = withKnownState(
      { id: 'h1', status: 'booked', payment: { status: 'paid' } },
      { id: 'h1', status: 'booked', payment: { required: true, status: 'waiting_for_confirmation' } },
      { nested: ['payment'] },
    );
    expect(data.payment).toEqual({ required: true, status: 'paid' });
  });

  it('returns the event as is when nothing is known', () => {
    expect(withKnownState({ id: 'h1', status: 'booked' }, undefined)).toEqual({ id: 'h1', status: 'booked' });
  });
});

describe('rememberKnownState', () => {
  it('completes each event from the last one and stores the state without event-scoped fields', async () => {
    const state = memoryState();
    await rememberKnownState(state, 'appointment/h1', { ...known, vendor: { raw: true }, changes: ['x'] });
    const next = await rememberKnownState(state, 'appointment/h1', {
      id: 'h1',
      status: 'arrived',
      payment: { status: 'refunded' },
      changes: ['payment.status'],
    });
    expect(next).toEqual({ ...known, payment: { status: 'refunded' }, changes: ['payment.status'] });
    expect(state.map.get(knownStateKey('appointment/h1'))).toEqual({
      ...known,
      payment: { status: 'refunded' },
    });
  });
});
