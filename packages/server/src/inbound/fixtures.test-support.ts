/** A message as ingest hands it to `storeInbound`, for the inbound and pipeline tests. */
import { randomUUID } from 'node:crypto';
import type { NewInbound } from './store.ts';

/**
 * A new push notification of instance `inst-1` (fresh id and dedupe key, no ordering key, no body),
 * with `over` on top.
 *
 * @example
 * ```ts
 * await storeInbound(db, [newInbound({ orderingKey: 'booking/1' })], [], []);
 * ```
 */
export function newInbound(over: Partial<NewInbound> = {}): NewInbound {
  return {
    id: randomUUID(),
    instanceId: 'inst-1',
    route: 'r',
    dedupeKey: randomUUID(),
    vendorType: 't',
    orderingKey: null,
    occurredAt: null,
    gate: false,
    payload: {},
    meta: null,
    bodyId: null,
    headers: null,
    sourceIp: null,
    origin: 'push',
    receivedAt: new Date(),
    ...over,
  };
}
