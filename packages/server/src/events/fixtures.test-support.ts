/** What a normalize commit takes for claimed messages, for the events and storage tests. */
import { randomUUID } from 'node:crypto';
import type { ProposedAlias } from '../entities/store.ts';
import type { InboundRow } from '../inbound/store.ts';
import type { NewEvent, NormalizedMessage } from './store.ts';

/**
 * The arguments of `commitNormalized` that normalize each claimed message of instance `inst-1` into
 * one `appointment.booked` event of subject `appointment/<ordering key>`, with one state write (key
 * `stateKey(m)`, value `1`) and one proposed alias (vendor id `proposed-<id>`, `unless`).
 *
 * @example
 * ```ts
 * const a = oneEventEach(claimed);
 * await commitNormalized(db, a.messages, a.events, a.states, undefined, a.aliases);
 * ```
 */
export function oneEventEach(
  claimed: readonly InboundRow[],
  options: { stateKey?: (m: InboundRow) => string; unless?: string | null } = {},
): {
  messages: NormalizedMessage[];
  events: NewEvent[];
  states: { inboundMessageId: string; instanceId: string; key: string; value: string }[];
  aliases: ProposedAlias[];
} {
  const stateKey = options.stateKey ?? (() => 'k');
  return {
    messages: claimed.map((m) => ({
      id: m.id,
      lockToken: m.lock_token!,
      status: 'normalized',
      reason: null,
      eventCount: 1,
    })),
    events: claimed.map((m) => ({
      id: randomUUID(),
      type: 'appointment.booked',
      source: 'inst-1',
      subject: `appointment/${m.ordering_key}`,
      time: new Date().toISOString(),
      envelope: { data: {} },
      inboundMessageId: m.id,
    })),
    states: claimed.map((m) => ({
      inboundMessageId: m.id,
      instanceId: 'inst-1',
      key: stateKey(m),
      value: '1',
    })),
    aliases: claimed.map((m) => ({
      chunk: 0,
      instanceId: 'inst-1',
      entity: 'e',
      vendorId: `proposed-${m.id}`,
      hubId: randomUUID(),
      unless: options.unless === undefined ? 'bulk-1' : options.unless,
    })),
  };
}
