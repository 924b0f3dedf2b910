import type { AliasStore, EntityKind, JsonValue, StateStore } from '@switchyard/core';
import type { Kysely } from 'kysely';
import * as q from '../storage/queries.ts';
import { newId } from './ids.ts';

/**
 * Known aliases per database handle. A vendor id's hub id never changes once stored (aliases are
 * only ever inserted, `on conflict do nothing`), so a hit stays true in every process: the cache
 * needs no invalidation, only a bound on its size.
 */
const aliasCaches = new WeakMap<Kysely<unknown>, Map<string, string>>();
const ALIAS_CACHE_MAX = 100_000;

function aliasCacheOf(db: Kysely<unknown>): Map<string, string> {
  let cache = aliasCaches.get(db);
  if (!cache) {
    cache = new Map();
    aliasCaches.set(db, cache);
  }
  return cache;
}

function remember(cache: Map<string, string>, key: string, hubId: string): void {
  // Oldest first out (Map keeps insertion order): a cheap bound instead of a full LRU.
  if (cache.size >= ALIAS_CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(key, hubId);
}

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
  const cache = aliasCacheOf(db);
  const key = (entity: string, vendorId: string) => `${instanceId}\u0000${entity}\u0000${vendorId}`;
  return {
    async hubId(entity: EntityKind, vendorId: string) {
      const k = key(entity, vendorId);
      const hit = cache.get(k);
      if (hit !== undefined) return hit;
      const hubId = await q.hubIdAlias(db, instanceId, entity, vendorId, newId());
      remember(cache, k, hubId);
      return hubId;
    },
    async find(entity: EntityKind, vendorId: string) {
      const k = key(entity, vendorId);
      const hit = cache.get(k);
      if (hit !== undefined) return hit;
      // A miss is not cached: another process may create the alias any moment.
      const hubId = await q.findAlias(db, instanceId, entity, vendorId);
      if (hubId !== undefined) remember(cache, k, hubId);
      return hubId;
    },
    async link(entity: EntityKind, vendorId: string, hubId: string) {
      // The alias that won (an existing one is never changed): that is what find() answers next.
      remember(cache, key(entity, vendorId), await q.ensureAlias(db, instanceId, entity, vendorId, hubId));
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
