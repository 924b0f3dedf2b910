/**
 * The SQL of what the hub keeps per vendor entity for the connectors, the normalize context's
 * stores (pipeline/stores.ts): `aliases` (a vendor id to its stable hub id) and `entity_state`
 * (a connector's known state of an entity). Beside the current-state projection (current.ts), the
 * hub's own latest snapshot of each entity: one folder for what is known about entities.
 */
import type { JsonValue } from '@switchyard/core';
import { type RawBuilder, sql } from 'kysely';
import { type Executor, first, json, jsonBatchOf, jsonBatchText, PLAN_STABLE, rows } from '../storage/db.ts';

export async function findAlias(
  db: Executor,
  instanceId: string,
  entity: string,
  vendorId: string,
): Promise<string | undefined> {
  const r = await first<{ hub_id: string }>(
    sql`select hub_id from switchyard.aliases where instance_id = ${instanceId} and entity = ${entity} and vendor_id = ${vendorId}`,
    db,
  );
  return r?.hub_id;
}

/** Creates the alias unless it exists; returns the hub id that won (also under a race). */
export async function ensureAlias(
  db: Executor,
  instanceId: string,
  entity: string,
  vendorId: string,
  hubId: string,
): Promise<string> {
  return hubIdAlias(db, instanceId, entity, vendorId, hubId);
}

/**
 * An alias's `created_at` when one statement links several: the statement's time plus its place in
 * the statement's input, in microseconds, so that the vendor ids of one hub id keep the order they
 * were linked in ({@link listVendorIds}: oldest first, the current one last, as commands take it).
 * With one time for all, ties fell to the ids' text: a Docplanner move seen first links the old and
 * the new booking in one statement, and `99999999` sorted after `100000001`, so a command went to
 * the booking the move had cancelled.
 */
function linkedAt(position: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`now() + make_interval(secs => ${position}::double precision / 1000000)`;
}

/**
 * The hub id of a vendor id, created with `newHubId` on first sight: one round trip. The insert's
 * RETURNING answers when the row is new, the select when it already existed. Under a race with
 * another transaction inserting the same alias, neither may see a row (the select reads the snapshot
 * from before the other commit): then a fresh read finds the winner.
 */
export async function hubIdAlias(
  db: Executor,
  instanceId: string,
  entity: string,
  vendorId: string,
  newHubId: string,
): Promise<string> {
  const r = await first<{ hub_id: string }>(
    sql`with ins as (
          insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id)
          values (${instanceId}, ${entity}, ${vendorId}, ${newHubId}) on conflict do nothing returning hub_id)
        select hub_id from ins
        union all
        select hub_id from switchyard.aliases where instance_id = ${instanceId} and entity = ${entity} and vendor_id = ${vendorId}
        limit 1`,
    db,
  );
  return r?.hub_id ?? (await findAlias(db, instanceId, entity, vendorId))!;
}

/** One alias key: the connector instance, entity kind and vendor id. */
export interface AliasKey {
  instanceId: string;
  entity: string;
  vendorId: string;
}

/** An alias row as the batched lookups return it. */
export interface AliasRow {
  instance_id: string;
  entity: string;
  vendor_id: string;
  hub_id: string;
}

/**
 * SQL: the alias row `alias` of the key `(k.instance_id, k.entity, <vendorId>)`, written for a plan
 * cached at empty tables. With the three columns compared by `=`, such a plan probed
 * `aliases_hub_idx` by its `(instance_id, entity)` prefix and filtered the vendor id, a walk of every
 * alias of the instance and entity kind once the table fills; with only the vendor id indexable, it
 * probes `aliases_vendor_idx` (a vendor id is shared by few instances and entity kinds). Checked by
 * storage/db.int.test.ts. `alias` and `vendorId` are constants of the calling statement.
 */
function aliasOf(alias: string, vendorId: string): RawBuilder<unknown> {
  const a = sql.raw(alias);
  return sql`${a}.vendor_id = ${sql.raw(vendorId)} and ${a}.instance_id is not distinct from k.instance_id
    and ${a}.entity is not distinct from k.entity`;
}

const aliasKeyArrays = (keys: readonly AliasKey[]) => [
  keys.map((k) => k.instanceId),
  keys.map((k) => k.entity),
  keys.map((k) => k.vendorId),
];

/**
 * {@link findAlias} for many keys in one round trip (the alias store batches concurrent lookups of
 * all normalize workers): the rows that exist, in no particular order.
 *
 * It and {@link hubIdAliases} are plan-stable (storage/db.ts `PLAN_STABLE`): planned at every
 * execution, `hubIdAliases` alone cost ~0.6–0.8 ms of Postgres CPU per event at 200/s
 * (bench/analysis.md, session 13). Each finds an alias by {@link aliasOf}.
 */
export async function findAliases(db: Executor, keys: readonly AliasKey[]): Promise<AliasRow[]> {
  const [instances, entities, vendorIds] = aliasKeyArrays(keys);
  return rows<AliasRow>(
    sql`${PLAN_STABLE}select a.instance_id, a.entity, a.vendor_id, a.hub_id
        from unnest(${instances}::text[], ${entities}::text[], ${vendorIds}::text[]) as k(instance_id, entity, vendor_id)
        join switchyard.aliases a on ${aliasOf('a', 'k.vendor_id')}`,
    db,
  );
}

/** A key of {@link hubIdAliases}: the hub id proposed for it, and the vendor id that blocks it. */
export interface HubIdKey extends AliasKey {
  newHubId: string;
  /**
   * Another vendor id of the same instance and entity kind: when it has an alias and the key has
   * none, the key is not created and the row says `other`'s hub id instead (`AliasStore.hubIdUnless`).
   */
  unless?: string | undefined;
}

/** A row of {@link hubIdAliases}: the key's hub id, or (blocked) the hub id of its `unless`. */
export interface HubIdRow extends Omit<AliasRow, 'hub_id'> {
  /** The key's hub id; null when it was not created (blocked). */
  hub_id: string | null;
  /** The `unless` of the key (blocked rows only). */
  unless: string | null;
  /** The key was not created: the hub id of its `unless` vendor id (then `hub_id` is null). */
  other_hub_id: string | null;
}

/**
 * {@link hubIdAlias} for many distinct keys in one statement: inserts the missing aliases with
 * their proposed hub ids, except a key whose `unless` vendor id has an alias (then a row with that
 * alias' hub id in `other_hub_id`), and returns the row of every key, new or existing. A key
 * another transaction inserted meanwhile may be missing from the answer (snapshot): read it again
 * with {@link findAliases}.
 */
export async function hubIdAliases(db: Executor, keys: readonly HubIdKey[]): Promise<HubIdRow[]> {
  const [instances, entities, vendorIds] = aliasKeyArrays(keys);
  return rows<HubIdRow>(
    sql`${PLAN_STABLE}with k as (
          select * from unnest(${instances}::text[], ${entities}::text[], ${vendorIds}::text[],
            ${keys.map((k) => k.newHubId)}::text[], ${keys.map((k) => k.unless ?? null)}::text[])
            with ordinality as k(instance_id, entity, vendor_id, hub_id, unless, n)),
        blocked as (
          select k.n, k.instance_id, k.entity, k.vendor_id, k.unless, a.hub_id as other_hub_id
          from k join switchyard.aliases a on ${aliasOf('a', 'k.unless')}),
        ins as (
          insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id, created_at)
          select instance_id, entity, vendor_id, hub_id, ${linkedAt(sql`n`)} from k where n not in (select n from blocked)
          -- Key order, as the normalize commit inserts (storeProposedAliases): two statements
          -- inserting the same new keys wait for each other in one order, never in a cycle.
          order by instance_id, entity, vendor_id
          on conflict do nothing
          returning instance_id, entity, vendor_id, hub_id)
        select instance_id, entity, vendor_id, hub_id, null as unless, null as other_hub_id from ins
        union all
        select a.instance_id, a.entity, a.vendor_id, a.hub_id, null, null
        from k join switchyard.aliases a on ${aliasOf('a', 'k.vendor_id')}
        union all
        select b.instance_id, b.entity, b.vendor_id, null, b.unless, b.other_hub_id from blocked b`,
    db,
  );
}

/**
 * A hub id a normalization made up for a vendor id without a statement of its own, stored by the
 * normalize commit ({@link storeProposedAliases}): its `chunk` (the run of messages it was made
 * for, numbered within the commit), the key and the proposed hub id, and the vendor id whose alias
 * refuses it (`AliasStore.hubIdUnless`).
 */
export interface ProposedAlias extends AliasKey {
  chunk: number;
  hubId: string;
  unless: string | null;
}

/** {@link storeProposedAliases}'s input: the proposals as parallel columns. */
export interface ProposedAliasColumns {
  chunks: number[];
  instanceIds: string[];
  entities: string[];
  vendorIds: string[];
  hubIds: string[];
  unless: (string | null)[];
}

/** Proposals as the columns {@link storeProposedAliases} reads. */
export function proposedAliasColumns(aliases: readonly ProposedAlias[]): ProposedAliasColumns {
  return {
    chunks: aliases.map((a) => a.chunk),
    instanceIds: aliases.map((a) => a.instanceId),
    entities: aliases.map((a) => a.entity),
    vendorIds: aliases.map((a) => a.vendorId),
    hubIds: aliases.map((a) => a.hubId),
    unless: aliases.map((a) => a.unless),
  };
}

/**
 * The aliases a normalize commit's chunks proposed, as CTEs to follow `subjects_locked` and precede
 * the `done` CTE of the normalize commit (events/store.ts `commitNormalized`), which finishes no
 * message of a chunk in `alias_refused`. A proposal stands when its alias ends up holding its hub
 * id: stored by this statement, or already so (a `link` of the same normalization). It is refused
 * when the statement's snapshot holds its key with another hub id or, for a proposal with an
 * `unless`, holds that vendor id (what `hubIdUnless` would have answered instead), or when another
 * transaction stored the key meanwhile (the insert then stores nothing). A chunk with a refusal
 * inserts nothing it saw refused in its snapshot, and its messages are normalized again with
 * statements of their own, which read what was there (pipeline/normalize.ts). Inserted in key
 * order, like {@link hubIdAliases}. Defines `alias_input`, `alias_seen` (each proposal with the
 * hub ids the snapshot holds for its key, `known`, and for its `unless`, `other`), `alias_added`
 * and `alias_refused` (`chunk`).
 *
 * The proposals come as parallel columns ({@link proposedAliasColumns}), so that a statement built
 * once (`statement` in storage/db.ts) can take each as an argument. `after` is the condition the
 * insert waits for: by default the normalize commit's `subjects_locked` CTE, so that its subject
 * locks are taken before any alias row is; a statement without such locks (a gate request stored
 * with the aliases its approval request made up: `HubHost.deferredAliases`) passes `true`.
 *
 * @example
 * ```ts
 * sql`with input as (...), ${lockSubjects()}, ${storeProposedAliases(proposedAliasColumns(aliases))},
 *     done as (update ... where v.chunk not in (select chunk from alias_refused) ...) select 1`;
 * ```
 */
export function storeProposedAliases(
  c: ProposedAliasColumns,
  after: RawBuilder<unknown> = sql`(select n from subjects_locked) is not null`,
): RawBuilder<unknown> {
  return sql`alias_input as (
      select * from unnest(${c.chunks}::integer[], ${c.instanceIds}::text[], ${c.entities}::text[],
        ${c.vendorIds}::text[], ${c.hubIds}::text[], ${c.unless}::text[])
        with ordinality as k(chunk, instance_id, entity, vendor_id, hub_id, unless, n)),
    alias_seen as (
      select k.chunk, k.instance_id, k.entity, k.vendor_id, k.hub_id, k.n,
        (select a.hub_id from switchyard.aliases a where ${aliasOf('a', 'k.vendor_id')}) as known,
        (select a.hub_id from switchyard.aliases a where k.unless is not null and ${aliasOf('a', 'k.unless')}) as other
      from alias_input k),
    alias_added as (
      insert into switchyard.aliases (instance_id, entity, vendor_id, hub_id, created_at)
      select s.instance_id, s.entity, s.vendor_id, s.hub_id, ${linkedAt(sql`s.n`)} from alias_seen s
      where ${after} and s.known is null
        and s.chunk not in (select x.chunk from alias_seen x
                            where x.known is distinct from x.hub_id and (x.known is not null or x.other is not null))
      order by s.instance_id, s.entity, s.vendor_id
      on conflict do nothing
      returning instance_id, entity, vendor_id, hub_id),
    -- The aliases added as the keys of one jsonb object, made once: a lookup per proposal instead
    -- of a nested loop over the CTE (no hash join in the plan-stable session; see done_keys in
    -- events/store.ts commitNormalized).
    alias_added_keys as (
      select coalesce(jsonb_object_agg(jsonb_build_array(instance_id, entity, vendor_id, hub_id)::text, true), '{}') as k
      from alias_added),
    alias_refused as (
      select distinct s.chunk from alias_seen s
      where s.known is distinct from s.hub_id
        and not ((select k from alias_added_keys) ? jsonb_build_array(s.instance_id, s.entity, s.vendor_id, s.hub_id)::text))`;
}

/**
 * {@link listVendorIds} for many hub ids in one round trip, each hub id's vendor ids in the same
 * order (`created_at`, `vendor_id`).
 */
export async function listVendorIdsMany(
  db: Executor,
  keys: readonly { instanceId: string; entity: string; hubId: string }[],
): Promise<AliasRow[]> {
  return rows<AliasRow>(
    sql`select a.instance_id, a.entity, a.vendor_id, a.hub_id
        from (select distinct * from unnest(${keys.map((k) => k.instanceId)}::text[], ${keys.map((k) => k.entity)}::text[], ${keys.map((k) => k.hubId)}::text[])
              as k(instance_id, entity, hub_id)) k
        join switchyard.aliases a using (instance_id, entity, hub_id)
        order by a.instance_id, a.entity, a.hub_id, a.created_at, a.vendor_id`,
    db,
  );
}

export async function listVendorIds(
  db: Executor,
  instanceId: string,
  entity: string,
  hubId: string,
): Promise<string[]> {
  const r = await rows<{ vendor_id: string }>(
    sql`select vendor_id from switchyard.aliases where instance_id = ${instanceId} and entity = ${entity} and hub_id = ${hubId}
        order by created_at, vendor_id`,
    db,
  );
  return r.map((x) => x.vendor_id);
}

/** One state entry of a connector instance ({@link getStates}). */
export interface StateKey {
  instanceId: string;
  key: string;
}

/**
 * Reads state entries of connector instances in one round trip (the state store batches the
 * concurrent reads of all normalize workers): the entries that exist, in no particular order.
 */
export async function getStates(
  db: Executor,
  keys: readonly StateKey[],
): Promise<{ instance_id: string; key: string; value: JsonValue }[]> {
  return rows(
    sql`${PLAN_STABLE}select s.instance_id, s.key, s.value
        from unnest(${keys.map((k) => k.instanceId)}::text[], ${keys.map((k) => k.key)}::text[]) as k(instance_id, key)
        join switchyard.entity_state s using (instance_id, key)`,
    db,
  );
}

/** A connector's state change made while normalizing a message, stored with its results. */
export interface NormalizedStateWrite {
  inboundMessageId: string;
  instanceId: string;
  key: string;
  /** The new value as JSON text; null: the entry is deleted. */
  value: string | null;
}

/** {@link storeNormalizedState}'s input: the writes as parallel columns, the values as one JSON batch. */
export interface NormalizedStateColumns {
  inboundMessageIds: string[];
  instanceIds: string[];
  keys: string[];
  /** `jsonBatchText` (storage/db.ts) of the values. */
  values: string;
}

/** Writes as the columns {@link storeNormalizedState} reads. */
export function normalizedStateColumns(writes: readonly NormalizedStateWrite[]): NormalizedStateColumns {
  return {
    inboundMessageIds: writes.map((w) => w.inboundMessageId),
    instanceIds: writes.map((w) => w.instanceId),
    keys: writes.map((w) => w.key),
    values: jsonBatchText(writes.map((w) => w.value)),
  };
}

/**
 * The state changes of normalized messages, as CTEs to follow a `done_keys` CTE whose one row's `k`
 * is a jsonb object keyed by the ids of the messages finished (the normalize commit,
 * events/store.ts, says why an object and not a join): the changes of those messages
 * only, the last change of a key winning (`writes` in order), upserted in key order (two commits
 * touching the same entries lock them in the same order) or deleted. Defines `state_input`,
 * `state_set` and `state_deleted`.
 *
 * @example
 * ```ts
 * sql`with done as (update switchyard.inbound_messages ... returning m.id),
 *     done_keys as (select coalesce(jsonb_object_agg(id::text, true), '{}') as k from done),
 *     ${storeNormalizedState(normalizedStateColumns(writes))}
 *     select 1`;
 * ```
 */
export function storeNormalizedState(c: NormalizedStateColumns): RawBuilder<unknown> {
  return sql`state_input as (
      select distinct on (s.instance_id, s.key) s.instance_id, s.key, s.value
      from unnest(${c.inboundMessageIds}::uuid[], ${c.instanceIds}::text[], ${c.keys}::text[], ${jsonBatchOf(c.values)})
        with ordinality as s(inbound_message_id, instance_id, key, value, ord)
      where (select k from done_keys) ? s.inbound_message_id::text
      order by s.instance_id, s.key, s.ord desc),
    state_set as (
      insert into switchyard.entity_state (instance_id, key, value)
      select instance_id, key, value from state_input where value is not null
      order by instance_id, key
      on conflict (instance_id, key) do update set value = excluded.value, updated_at = now()),
    state_deleted as (
      delete from switchyard.entity_state e using state_input s
      where s.value is null and e.instance_id = s.instance_id and e.key = s.key)`;
}

export async function setState(
  db: Executor,
  instanceId: string,
  key: string,
  value: JsonValue,
): Promise<void> {
  await sql`insert into switchyard.entity_state (instance_id, key, value) values (${instanceId}, ${key}, ${json(value)})
      on conflict (instance_id, key) do update set value = excluded.value, updated_at = now()`.execute(db);
}

export async function deleteState(db: Executor, instanceId: string, key: string): Promise<void> {
  await sql`delete from switchyard.entity_state where instance_id = ${instanceId} and key = ${key}`.execute(
    db,
  );
}
