import type { AliasStore, EntityKind, JsonValue, StateStore } from '@switchyard/core';
import { type Kysely, sql } from 'kysely';
import * as entityStore from '../entities/store.ts';
import type { DeferredAliases } from '../host/host.ts';
import { newId } from '../storage/db.ts';
import { GroupCommit } from '../storage/group-commit.ts';

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
 * Group lookup: a {@link GroupCommit} of read (or insert-or-read) calls. Calls made together (in
 * one synchronous run of code) go in one statement, sent a microtask later; calls made while
 * `MAX_IN_FLIGHT` statements of the same kind run are answered together by the next one, one row
 * per distinct key. Every normalize worker asks its alias questions one after
 * another, so without this each booking cost ~4 sequential round trips, and per-statement overhead
 * (socket writes, protocol parsing) was the hub's largest CPU cost. Answers are the same as one
 * statement per call: each call still reads after it was made.
 */
class Batcher<A, V> {
  readonly #group: GroupCommit<A, V>;

  constructor(keyOf: (arg: A) => string, run: (args: A[]) => Promise<Map<string, V>>, missing: V) {
    this.#group = new GroupCommit<A, V>({
      maxInFlight: MAX_IN_FLIGHT,
      maxBatch: MAX_BATCH,
      // A connector asking two look-ups at once (Docplanner: the booking and its gate alias) sends
      // one statement, not two.
      sameTick: true,
      commit: async (args) => {
        const answers = await run([...new Map(args.map((a) => [keyOf(a), a])).values()]);
        return args.map((a) => {
          const k = keyOf(a);
          return answers.has(k) ? answers.get(k)! : missing;
        });
      },
    });
  }

  load(arg: A): Promise<V> {
    return this.#group.write(arg);
  }
}

const MAX_IN_FLIGHT = 2;
const MAX_BATCH = 500;

/** What `hubId` and `hubIdUnless` learn of a key: its hub id, or the hub id of its `unless`. */
type HubIdAnswer = { hubId: string } | { other: string };

interface AliasBatchers {
  find: Batcher<entityStore.AliasKey, string | undefined>;
  hubId: Batcher<entityStore.HubIdKey, HubIdAnswer | undefined>;
  vendorIds: Batcher<{ instanceId: string; entity: string; hubId: string }, string[]>;
}

const batchers = new WeakMap<Kysely<unknown>, AliasBatchers>();
const aliasKey = (instanceId: string, entity: string, id: string) =>
  `${instanceId}\u0000${entity}\u0000${id}`;
const rowKey = (r: Pick<entityStore.AliasRow, 'instance_id' | 'entity' | 'vendor_id'>) =>
  aliasKey(r.instance_id, r.entity, r.vendor_id);
/**
 * Calls of the insert-or-read batch differ by their `unless` too (two of a batch may differ there);
 * a call without one is the alias key alone, so an empty `unless` is not mistaken for none.
 */
const hubIdKeyOf = (k: entityStore.AliasKey & { unless?: string | null | undefined }) =>
  k.unless == null
    ? aliasKey(k.instanceId, k.entity, k.vendorId)
    : `${aliasKey(k.instanceId, k.entity, k.vendorId)}\u0000${k.unless}`;

function batchersOf(db: Kysely<unknown>): AliasBatchers {
  const known = batchers.get(db);
  if (known) return known;
  const keyOf = (k: entityStore.AliasKey) => aliasKey(k.instanceId, k.entity, k.vendorId);
  const find = new Batcher<entityStore.AliasKey, string | undefined>(
    keyOf,
    async (keys) => new Map((await entityStore.findAliases(db, keys)).map((r) => [rowKey(r), r.hub_id])),
    undefined,
  );
  const b: AliasBatchers = {
    find,
    hubId: new Batcher<entityStore.HubIdKey, HubIdAnswer | undefined>(
      hubIdKeyOf,
      async (keys) => {
        const known = new Map<string, string>();
        const blocked = new Map<string, string>();
        for (const r of await entityStore.hubIdAliases(db, keys)) {
          if (r.hub_id !== null) known.set(rowKey(r), r.hub_id);
          else
            blocked.set(
              hubIdKeyOf({
                instanceId: r.instance_id,
                entity: r.entity,
                vendorId: r.vendor_id,
                unless: r.unless,
              }),
              r.other_hub_id!,
            );
        }
        // Inserted meanwhile by another transaction (not in this statement's snapshot): read again.
        const raced = keys.filter((k) => !known.has(keyOf(k)) && !blocked.has(hubIdKeyOf(k)));
        if (raced.length > 0)
          for (const r of await entityStore.findAliases(db, raced)) known.set(rowKey(r), r.hub_id);
        const answers = new Map<string, HubIdAnswer>();
        for (const k of keys) {
          const hubId = known.get(keyOf(k));
          const other = blocked.get(hubIdKeyOf(k));
          if (hubId !== undefined) answers.set(hubIdKeyOf(k), { hubId });
          else if (other !== undefined) answers.set(hubIdKeyOf(k), { other });
        }
        return answers;
      },
      undefined,
    ),
    vendorIds: new Batcher<{ instanceId: string; entity: string; hubId: string }, string[]>(
      (k) => aliasKey(k.instanceId, k.entity, k.hubId),
      async (keys) => {
        const out = new Map<string, string[]>();
        for (const r of await entityStore.listVendorIdsMany(db, keys)) {
          const k = aliasKey(r.instance_id, r.entity, r.hub_id);
          const list = out.get(k);
          if (list) list.push(r.vendor_id);
          else out.set(k, [r.vendor_id]);
        }
        return out;
      },
      [],
    ),
  };
  batchers.set(db, b);
  return b;
}

/**
 * The hub ids one normalization created: its own `hubId` call inserted the alias with the id it
 * made up (a random UUID), so no one could know the id before that insert. By hub id: the entity
 * kind and vendor id of that alias, or null once the normalization linked another vendor id to it.
 *
 * What the normalization asks next about such an id is answered without a round trip: its
 * `vendorIds` are the one vendor id (no other alias can name the id unless this normalization
 * linked one), and a state key naming the id has no stored value (its own writes aside). Another
 * worker can learn the id only from the alias once it is inserted, so whatever it adds meanwhile
 * (a link, a committed state) is concurrent with this normalization: the answer is the one it
 * would get had that write landed a moment after its read, which it may anyway. For a new
 * Docplanner booking this saves the `vendorIds` and known-state statements, two of its four
 * sequential look-ups (bench/analysis.md, "Fresh hub ids").
 *
 * @example
 * ```ts
 * const fresh: FreshHubIds = new Map();
 * const aliases = aliasStore(db, 'docplanner-main', fresh);
 * const state = normalizeStateStore(db, 'docplanner-main', runWrites, writes, fresh);
 * ```
 */
export type FreshHubIds = Map<string, { entity: string; vendorId: string } | null>;

/**
 * A hub id made up for a vendor id and not stored yet: the normalize commit stores it (see
 * {@link ProposedAliases}).
 */
export type Proposal = Omit<entityStore.ProposedAlias, 'chunk'>;

/**
 * Where a normalization's alias store defers the aliases it creates, instead of storing each with
 * a statement of its own: `run`, by alias key, the proposals of the normalize run, stored or not
 * (what a later message of the run asks about a vendor id an earlier one saw first); `made`, the
 * proposals of this message, which its commit stores (`storeProposedAliases` in
 * entities/store.ts). A proposal the commit refuses (the alias existed after all: another process
 * made it, or this one before its cache knew) makes the commit leave the message's chunk
 * unfinished, and the run normalizes it again with an alias store that stores at once
 * (pipeline/normalize.ts). For a vendor id seen for the first time, the usual case of a new
 * booking, this saves the alias statement: one of about three per event at 200 events/s
 * (bench/analysis.md, "The alias rides on the commit").
 *
 * @example
 * ```ts
 * const deferred: ProposedAliases = { run: new Map(), made: [] };
 * const aliases = aliasStore(db, 'docplanner-main', fresh, deferred);
 * const id = await aliases.hubId('appointment', '123'); // no statement; deferred.made holds it
 * ```
 */
export interface ProposedAliases {
  run: Map<string, Proposal>;
  made: Proposal[];
}

/**
 * Remembers aliases known to be stored (the normalize commit's proposals that stood, and those its
 * snapshot saw) in the cache of `db`'s alias stores.
 */
export function rememberAliases(db: Kysely<unknown>, stored: readonly entityStore.AliasRow[]): void {
  const cache = aliasCacheOf(db);
  for (const r of stored) remember(cache, rowKey(r), r.hub_id);
}

/** The alias key of a proposal ({@link ProposedAliases}.run). */
export const proposalKey = (p: entityStore.AliasKey): string => aliasKey(p.instanceId, p.entity, p.vendorId);

/**
 * The Postgres-backed {@link AliasStore} of one connector instance. `hubId` is race-safe: two
 * workers seeing a vendor id first at once agree on one hub id. Concurrent calls of all workers
 * sharing `db` are sent together (one statement per kind of call in flight, see `Batcher`).
 * `fresh` (normalization only): where the hub ids this store creates are recorded, and what
 * answers `vendorIds` for them (see {@link FreshHubIds}). `deferred` (normalization only): new
 * aliases are proposed there instead of stored, for the normalize commit to store or refuse (see
 * {@link ProposedAliases}); race safety then comes from that commit.
 *
 * @example
 * ```ts
 * const aliases = aliasStore(db, 'docplanner-main');
 * const id = await aliases.hubId('appointment', '123');
 * ```
 */
export function aliasStore(
  db: Kysely<unknown>,
  instanceId: string,
  fresh?: FreshHubIds,
  deferred?: ProposedAliases,
): AliasStore {
  const cache = aliasCacheOf(db);
  const b = batchersOf(db);
  const key = (entity: string, vendorId: string) => aliasKey(instanceId, entity, vendorId);
  /** Caches the hub id a `hubId` call got for cache key `k`; records it as fresh if it proposed it. */
  const known = (k: string, entity: string, vendorId: string, proposed: string, hubId: string) => {
    // The proposal won only if this call's insert stored it (a UUID nobody else made up).
    if (hubId === proposed) fresh?.set(hubId, { entity, vendorId });
    remember(cache, k, hubId);
    return hubId;
  };
  /** Defers a new alias: no one else can know the made-up id before the commit stores it. */
  const propose = (
    deferred: ProposedAliases,
    entity: string,
    vendorId: string,
    hubId: string,
    unless: string | null,
  ) => {
    const p: Proposal = { instanceId, entity, vendorId, hubId, unless };
    deferred.run.set(key(entity, vendorId), p);
    deferred.made.push(p);
    return hubId;
  };
  /** A hub id this run made up and has not stored, of this entity kind. */
  const isProposed = (deferred: ProposedAliases, entity: string, hubId: string) => {
    for (const p of deferred.run.values()) if (p.hubId === hubId && p.entity === entity) return true;
    return false;
  };
  return {
    async hubId(entity: EntityKind, vendorId: string) {
      const k = key(entity, vendorId);
      const hit = cache.get(k) ?? deferred?.run.get(k)?.hubId;
      if (hit !== undefined) return hit;
      const proposed = newId();
      if (deferred) {
        fresh?.set(proposed, { entity, vendorId });
        return propose(deferred, entity, vendorId, proposed, null);
      }
      const answer = (await b.hubId.load({ instanceId, entity, vendorId, newHubId: proposed })) as {
        hubId: string;
      };
      return known(k, entity, vendorId, proposed, answer.hubId);
    },
    async hubIdUnless(entity: EntityKind, vendorId: string, other: string) {
      const k = key(entity, vendorId);
      const hit = cache.get(k) ?? deferred?.run.get(k)?.hubId;
      if (hit !== undefined) return { hubId: hit };
      const proposed = newId();
      if (deferred) {
        // `other` made up earlier in the run: it exists as far as this run knows.
        const otherProposed = deferred.run.get(key(entity, other));
        if (otherProposed) return { other: otherProposed.hubId };
        // `other` unknown here: the commit refuses the proposal if it exists. Known stored, the
        // answer hangs on whether this vendor id has an alias too: asked below.
        if (!cache.has(key(entity, other))) {
          fresh?.set(proposed, { entity, vendorId });
          return { hubId: propose(deferred, entity, vendorId, proposed, other) };
        }
      }
      const answer = (await b.hubId.load({
        instanceId,
        entity,
        vendorId,
        newHubId: proposed,
        unless: other,
      }))!;
      if (!('hubId' in answer)) {
        remember(cache, key(entity, other), answer.other);
        return answer;
      }
      return { hubId: known(k, entity, vendorId, proposed, answer.hubId) };
    },
    async find(entity: EntityKind, vendorId: string) {
      const k = key(entity, vendorId);
      const hit = cache.get(k) ?? deferred?.run.get(k)?.hubId;
      if (hit !== undefined) return hit;
      // A miss is not cached: another process may create the alias any moment.
      const hubId = await b.find.load({ instanceId, entity, vendorId });
      if (hubId !== undefined) remember(cache, k, hubId);
      return hubId;
    },
    async link(entity: EntityKind, vendorId: string, hubId: string) {
      // The vendor id got a hub id in this run: that one stays, as a stored alias would.
      if (deferred?.run.has(key(entity, vendorId))) return;
      // Its vendor ids come from the database from now on (their order is the aliases' creation).
      if (fresh?.has(hubId)) fresh.set(hubId, null);
      // A hub id not stored yet is linked by the commit that stores it (a refusal then takes the
      // link back with it).
      if (deferred && isProposed(deferred, entity, hubId)) {
        propose(deferred, entity, vendorId, hubId, null);
        return;
      }
      // The alias that won (an existing one is never changed): that is what find() answers next.
      remember(
        cache,
        key(entity, vendorId),
        await entityStore.ensureAlias(db, instanceId, entity, vendorId, hubId),
      );
    },
    async vendorIds(entity: EntityKind, hubId: string) {
      const made = fresh?.get(hubId);
      if (made) return made.entity === entity ? [made.vendorId] : [];
      // A copy: callers may change the list, and waiters of one batch share the answer.
      const stored = [...(await b.vendorIds.load({ instanceId, entity, hubId }))];
      // Then the vendor ids this run gave it and has not stored, in the order given.
      if (deferred)
        for (const p of deferred.run.values())
          if (p.hubId === hubId && p.entity === entity && !stored.includes(p.vendorId))
            stored.push(p.vendorId);
      return stored;
    },
  };
}

/**
 * `HubHost.deferredAliases` (host/host.ts): an alias store proposing what it creates, as the normalize
 * worker's does ({@link ProposedAliases}), with the proposals stored by the caller's statement
 * through `storeProposedAliases` (entities/store.ts: the same refusals as the normalize commit's,
 * all proposals one chunk) and remembered in `db`'s cache once that statement stood.
 *
 * @example
 * ```ts
 * const deferred = deferredAliasStore(db, 'dp-main');
 * await deferred.store.hubId('approval_request', 'dp-main/123'); // no statement
 * sql`with ${deferred.storing()}, … where not exists (select from alias_refused) …`;
 * ```
 */
export function deferredAliasStore(db: Kysely<unknown>, instanceId: string): DeferredAliases {
  const fresh: FreshHubIds = new Map();
  const deferred: ProposedAliases = { run: new Map(), made: [] };
  return {
    store: aliasStore(db, instanceId, fresh, deferred),
    storing() {
      if (deferred.made.length === 0) return undefined;
      return entityStore.storeProposedAliases(
        entityStore.proposedAliasColumns(deferred.made.map((p) => ({ ...p, chunk: 0 }))),
        sql`true`,
      );
    },
    stored() {
      rememberAliases(
        db,
        deferred.made.map((p) => ({
          instance_id: p.instanceId,
          entity: p.entity,
          vendor_id: p.vendorId,
          hub_id: p.hubId,
        })),
      );
    },
  };
}

/**
 * The Postgres-backed {@link StateStore} of one connector instance, writing at once (pulls,
 * commands, subsystems through the host). Normalization uses {@link normalizeStateStore}.
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
      return (await stateReaderOf(db).load({ instanceId, key })) as T | undefined;
    },
    set(key: string, value: JsonValue) {
      return entityStore.setState(db, instanceId, key, value);
    },
    delete(key: string) {
      return entityStore.deleteState(db, instanceId, key);
    },
  };
}

/** State reads of all workers sharing a database handle, batched like the alias look-ups. */
const stateReaders = new WeakMap<Kysely<unknown>, Batcher<entityStore.StateKey, JsonValue | undefined>>();
const stateKey = (instanceId: string, key: string) => `${instanceId}\u0000${key}`;

function stateReaderOf(db: Kysely<unknown>): Batcher<entityStore.StateKey, JsonValue | undefined> {
  let reader = stateReaders.get(db);
  if (!reader) {
    reader = new Batcher<entityStore.StateKey, JsonValue | undefined>(
      (k) => stateKey(k.instanceId, k.key),
      async (keys) =>
        new Map(
          (await entityStore.getStates(db, keys)).map((r) => [stateKey(r.instance_id, r.key), r.value]),
        ),
      undefined,
    );
    stateReaders.set(db, reader);
  }
  return reader;
}

/**
 * State changes not stored yet, by key: the JSON text of the new value, or null for a deletion.
 * Kept as text so a caller changing an object after `set` (or after `get`) changes nothing here.
 */
export type StateWrites = Map<string, string | null>;

/**
 * The {@link StateStore} a normalization gets. Writes are not sent: they collect in `writes` and
 * are stored by the statement that stores the notification's results (`commitNormalized`), so the
 * state moves with the events it produced, and a notification that fails, is retried or whose
 * lease is lost leaves no state change behind (a retry reads the state as it was). Reads see the
 * notification's own writes, then `earlier` (the writes of the notifications of its run normalized
 * before it, committed or not), then the database (batched with the other workers' reads).
 * Each notification thus costs no state statement of its own: a read shares a statement, a write
 * rides on the commit (docs/pipeline.md). A key naming a hub id the notification's alias store
 * created (`fresh`, see {@link FreshHubIds}) has nothing stored: read without a statement.
 *
 * @example
 * ```ts
 * const writes: StateWrites = new Map();
 * const state = normalizeStateStore(db, 'bookingbug-main', runWrites, writes, new Map());
 * await state.set('purchase/42', { bookings: [] }); // stored with the notification's events
 * ```
 */
export function normalizeStateStore(
  db: Kysely<unknown>,
  instanceId: string,
  earlier: ReadonlyMap<string, string | null>,
  writes: StateWrites,
  fresh: ReadonlyMap<string, unknown>,
): StateStore {
  return {
    async get<T extends JsonValue>(key: string) {
      const pending = writes.has(key) ? writes.get(key) : earlier.get(key);
      if (pending !== undefined) return pending === null ? undefined : (JSON.parse(pending) as T);
      // The earlier messages of the run were normalized before the id existed: not in `earlier`.
      for (const hubId of fresh.keys()) if (key.includes(hubId)) return undefined;
      return (await stateReaderOf(db).load({ instanceId, key })) as T | undefined;
    },
    async set(key: string, value: JsonValue) {
      writes.set(key, JSON.stringify(value));
    },
    async delete(key: string) {
      writes.set(key, null);
    },
  };
}
