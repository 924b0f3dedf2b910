import type { AliasStore, EntityKind, JsonValue, StateStore } from '@switchyard/core';
import type { Kysely } from 'kysely';
import * as q from '../storage/queries.ts';
import { newId } from './ids.ts';

/**
 * The Postgres-backed {@link AliasStore} of one connector instance. `hubId` is race-safe: two
 * workers seeing a vendor id first at once agree on one hub id.
 *
 * @example
 * ```ts
 * const aliases = aliasStore(db, 'docplanner-main');
 * const id = await aliases.hubId('appointment', '123');
 * ```
 */
export function aliasStore(db: Kysely<unknown>, instanceId: string): AliasStore {
  return {
    async hubId(entity: EntityKind, vendorId: string) {
      return (
        (await q.findAlias(db, instanceId, entity, vendorId)) ??
        q.ensureAlias(db, instanceId, entity, vendorId, newId())
      );
    },
    find(entity: EntityKind, vendorId: string) {
      return q.findAlias(db, instanceId, entity, vendorId);
    },
    async link(entity: EntityKind, vendorId: string, hubId: string) {
      await q.ensureAlias(db, instanceId, entity, vendorId, hubId);
    },
    vendorIds(entity: EntityKind, hubId: string) {
      return q.listVendorIds(db, instanceId, entity, hubId);
    },
  };
}

/**
 * The Postgres-backed {@link StateStore} of one connector instance.
 *
 * @example
 * ```ts
 * const state = stateStore(db, 'bookingbug-main');
 * await state.set('purchase/42', { bookings: [] });
 * ```
 */
export function stateStore(db: Kysely<unknown>, instanceId: string): StateStore {
  return {
    async get<T extends JsonValue>(key: string) {
      return (await q.getState(db, instanceId, key)) as T | undefined;
    },
    set(key: string, value: JsonValue) {
      return q.setState(db, instanceId, key, value);
    },
    delete(key: string) {
      return q.deleteState(db, instanceId, key);
    },
  };
}
