import { readdirSync, readFileSync } from 'node:fs';
import type { EventEnvelope, JsonObject } from '@switchyard/core';
import { completeEvent, inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { encode } from './encode.ts';
import { normalize } from './normalize.ts';
import { parse } from './parse.ts';

const config: Config = { pushAuth: { apiKey: 'dp-push-key-7f3a9c2e41' } };
// A partial booking object is left out: encode writes a whole booking (with Docplanner's defaults
// for what the event lacks), so encoding it is not the identity.
const files = readdirSync(new URL('../fixtures/', import.meta.url)).filter(
  (f) =>
    f.endsWith('.json') && f !== 'unknown-name.json' && f !== 'booking-payment-status-changed-partial.json',
);
const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as JsonObject;

async function eventsOf(body: JsonObject, ctx: ReturnType<typeof memoryNormalizeContext<Config>>) {
  const n = parse(inboundRequest({ body }), config)[0]!;
  const result = await normalize(n, ctx);
  return result.events.map((draft, index) =>
    completeEvent(draft, { instanceId: ctx.instanceId, connector: 'docplanner', notification: n, index }),
  );
}

/** Strips `vendor` so the comparison is about what encode derived from the normalized fields. */
function withoutVendor(event: EventEnvelope): EventEnvelope {
  const data = structuredClone(event.data) as JsonObject;
  delete data.vendor;
  for (const key of ['proposed', 'current']) {
    if (data[key] && typeof data[key] === 'object') delete (data[key] as JsonObject).vendor;
  }
  return { ...event, data };
}

describe('encode round trips', () => {
  it.each(files)('%s: encode → parse → normalize gives the same event back', async (file) => {
    const ctx = memoryNormalizeContext({ instanceId: 'dp-main', config });
    const [event] = await eventsOf(fixture(file), ctx);
    const encoded = encode(event!, config);
    expect(encoded.route).toBe('default');
    const body = encoded.body as JsonObject;
    expect(body.name).toBe(fixture(file).name);
    expect(body.created_at).toBe(event!.time);
    const [again] = await eventsOf(body, ctx);
    expect(again!.type).toBe(event!.type);
    expect(again!.subject).toBe(event!.subject);
    // Fields the model names must survive even without the vendor record to fall back on.
    const bare = encode(withoutVendor(event!), config).body as JsonObject;
    const [fromBare] = await eventsOf(bare, ctx);
    const strip = (e: EventEnvelope) => {
      const d = withoutVendor(e).data as JsonObject;
      delete d.previous; // break-moved previous depends on the stored state, which moved on
      return d;
    };
    expect(strip(fromBare!)).toEqual(strip(event!));
  });

  it('encodes each normalized type to its Docplanner name', async () => {
    const names: Record<string, string> = {};
    for (const file of files) {
      // One context per fixture: in file order, slot-booked.json would follow the move and the
      // payment change of its booking, and a creation told after those is ignored as late.
      const ctx = memoryNormalizeContext({ instanceId: 'dp-main', config });
      for (const event of await eventsOf(fixture(file), ctx)) {
        names[`${event.type}${event.type === 'appointment.created' ? `:${event.vendortype}` : ''}`] = (
          encode(event, config).body as JsonObject
        ).name as string;
      }
    }
    expect(names).toMatchObject({
      'appointment.booking_requested': 'slot-booking',
      'appointment.reschedule_requested': 'booking-moving',
      'appointment.created:slot-booked': 'slot-booked',
      'appointment.created:slot-overbooked': 'slot-overbooked',
      'appointment.confirmed': 'booking-confirmed',
      'appointment.cancelled': 'booking-canceled',
      'appointment.rescheduled': 'booking-moved',
      'appointment.updated': 'booking-payment-status-changed',
      'appointment.arrived': 'presence-marked',
      'appointment.no_show': 'presence-marked',
      'slot.blocked': 'break-created',
      'slot.block_moved': 'break-moved',
      'slot.unblocked': 'break-removed',
      'slot.changed': 'slot-changed',
      'schedule.activated': 'address-assigned',
      'schedule.deactivated': 'address-unassigned',
    });
  });

  it('refuses a type it cannot produce', () => {
    const event = {
      type: 'document.created',
      data: {},
      time: '2026-03-01T00:00:00Z',
    } as unknown as EventEnvelope;
    expect(() => encode(event, config)).toThrow(/cannot encode document.created/);
  });
});
