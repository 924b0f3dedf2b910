import { readFileSync } from 'node:fs';
import { type JsonObject, type VendorNotification, validateEvent } from '@switchyard/core';
import { completeEvent, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import { normalize } from './normalize.ts';
import { toNotification, UNAVAILABLE_BLOCK_TYPE } from './pull.ts';
import { fixtureSettings, fixtureUrl } from './testing.ts';

/** The block of a fixture page (fixtures/README.md: Cliniko's published examples). */
const listed = (file: string) =>
  (JSON.parse(readFileSync(fixtureUrl(file), 'utf8')) as { unavailable_blocks: JsonObject[] })
    .unavailable_blocks[0]!;
const block = (item: JsonObject) => toNotification(item, UNAVAILABLE_BLOCK_TYPE);

/** Normalizes the versions in turn with one context; each event checked as the pipeline does. */
async function story(...versions: VendorNotification[]) {
  const ctx = memoryNormalizeContext({ instanceId: 'cliniko-main', config: fixtureSettings });
  const out: Array<{ type?: string; ignored?: string; data?: JsonObject; subject?: string }> = [];
  for (const v of versions) {
    const result = await normalize(v, ctx);
    result.events.forEach((draft, index) => {
      const event = completeEvent(draft, {
        instanceId: ctx.instanceId,
        connector: 'cliniko',
        notification: v,
        index,
      });
      expect(validateEvent(event), `${draft.type} valid`).toEqual({ valid: true });
    });
    const [event] = result.events;
    out.push(
      result.ignored !== undefined
        ? { ignored: result.ignored }
        : { type: event!.type, subject: event!.subject, data: event!.data as JsonObject },
    );
  }
  return out;
}

describe('Cliniko normalize: unavailable blocks', () => {
  it("tells a block listed, moved and deleted as slot.blocked, slot.block_moved (previous) and slot.unblocked, with a break's slot fields", async () => {
    const [blocked, moved, unblocked] = await story(
      block(listed('page-unavailable-blocks.json')),
      block(listed('page-unavailable-blocks-moved.json')),
      block(listed('page-unavailable-blocks-deleted.json')),
    );
    expect(blocked).toMatchObject({
      type: 'slot.blocked',
      data: {
        vendorIds: [{ system: 'cliniko', instance: 'cliniko-main', value: '1', current: true }],
        kind: 'block',
        status: 'busy-unavailable',
        start: '2016-07-13T06:30:00Z',
        end: '2016-07-13T07:00:00Z',
        practitioner: { id: '1' },
        location: { id: '1' },
        vendor: { id: 1, notes: null },
      },
    });
    expect(blocked!.subject).toBe(`slot/${blocked!.data!.id}`);
    expect(moved).toMatchObject({
      type: 'slot.block_moved',
      subject: blocked!.subject,
      data: {
        start: '2016-07-13T06:30:00Z',
        end: '2016-07-13T07:30:00Z',
        previous: { start: '2016-07-13T06:30:00Z', end: '2016-07-13T07:00:00Z' },
      },
    });
    expect(unblocked).toMatchObject({
      type: 'slot.unblocked',
      subject: blocked!.subject,
      data: { status: 'busy-unavailable', start: '2016-07-13T06:30:00Z', end: '2016-07-13T07:30:00Z' },
    });
  });

  it('tells an archived block (archived_at, what the current API does where it deleted) as unblocked, once', async () => {
    const first = listed('page-unavailable-blocks.json');
    const out = await story(
      block(first),
      block({ ...first, updated_at: '2016-07-16T09:00:00Z', archived_at: '2016-07-16T09:00:00Z' }),
      block({
        ...first,
        updated_at: '2016-07-16T09:30:00Z',
        archived_at: '2016-07-16T09:00:00Z',
        notes: 'x',
      }),
    );
    expect(out.map((o) => o.type ?? o.ignored)).toEqual([
      'slot.blocked',
      'slot.unblocked',
      'Cliniko unavailable block 1 was already removed: nothing to tell subscribers',
    ]);
  });

  it('ignores a block first seen removed, a version not newer than the last, and a change of the notes alone', async () => {
    const first = listed('page-unavailable-blocks.json');
    expect(
      (await story(block(listed('page-unavailable-blocks-deleted.json')))).map((o) => o.ignored),
    ).toEqual(['Cliniko unavailable block 1 was first seen removed: nothing to tell subscribers']);
    const out = await story(
      block(listed('page-unavailable-blocks-moved.json')),
      block(first),
      block({
        ...listed('page-unavailable-blocks-moved.json'),
        updated_at: '2016-07-16T10:00:00Z',
        notes: 'team meeting',
      }),
    );
    expect(out.map((o) => o.type ?? o.ignored)).toEqual([
      'slot.blocked',
      'Cliniko unavailable block 1 version 2016-07-15T00:04:35Z is not newer than 2016-07-16T09:00:00Z',
      'Cliniko unavailable block 1 changed neither its times nor whether it stands (its notes or repeat): no slot event says so',
    ]);
  });

  it('keeps blocks and appointments of the same Cliniko id apart: each its own hub id and subject', async () => {
    const ctx = memoryNormalizeContext({ instanceId: 'cliniko-main', config: fixtureSettings });
    const slot = await normalize(block(listed('page-unavailable-blocks.json')), ctx);
    const appointment = await normalize(
      toNotification({ id: 1, updated_at: '2016-07-15T00:04:35Z', starts_at: '2016-07-13T06:30:00Z' }),
      ctx,
    );
    expect([slot.events[0]!.type, appointment.events[0]!.type]).toEqual([
      'slot.blocked',
      'appointment.created',
    ]);
    expect(slot.events[0]!.subject!.split('/')[1]).not.toBe(appointment.events[0]!.subject!.split('/')[1]);
  });
});
