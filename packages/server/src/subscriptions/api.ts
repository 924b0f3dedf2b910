/**
 * The `hub.subscriptions` section: webhook and pull subscriptions, enabling and secret rotation,
 * built on the declared {@link SubscriptionsHost}. Every input is checked against the one schema
 * (./schema.ts) before anything else; what a schema cannot say (a webhook's url on the merged
 * subscription, secrets that parse) is checked here.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Kysely } from 'kysely';
import { exists, invalid, notFound } from '../admin/errors.ts';
import * as deliveryStore from '../deliveries/store.ts';
import { validateSchedule } from '../delivery/retry-schedule.ts';
import { type SecretCipher, secretHint } from '../delivery/secret-box.ts';
import { generateSecret, isValidSecret } from '../delivery/sign.ts';
import { type Executor, newId } from '../storage/db.ts';
import { CHANNEL_DELIVER, notify } from '../storage/queues.ts';
import type { StoredSecret, SubscriptionRow } from '../storage/subscription-row.ts';
import type { Subscription, SubscriptionCreate, SubscriptionUpdate } from './generated/input.ts';
import { checkSources, checkSubscriptionInput, checkSubscriptionRules } from './input.ts';
import { SUBSCRIPTION_FIELDS } from './schema.ts';
import * as store from './store.ts';

/** Who changes a subscription: the admin API, or the configuration file (applied at start). */
export type ManagedBy = 'file' | 'api';

/** An input to `create`: the schema's fields and who manages the subscription (default `api`). */
export type SubscriptionInput = SubscriptionCreate & { managedBy?: ManagedBy };

/** A change: the schema's update fields and who manages the subscription (unchanged when absent). */
export type SubscriptionPatch = SubscriptionUpdate & { managedBy?: ManagedBy };

/**
 * The reason a subscription is disabled when the configuration file that declared it no longer does
 * (runtime/apply.ts). It marks the one disable the file takes back when it declares the
 * subscription again, and the one file-managed subscription the admin API may delete.
 */
export const NOT_DECLARED_REASON = 'no longer declared in the configuration file';

/**
 * Whether a subscription is file-managed and disabled because the file no longer declares it.
 *
 * @example
 * ```ts
 * if (before.managedBy === 'file' && !isNoLongerDeclared(before)) throw refuseFileManaged(id);
 * ```
 */
export function isNoLongerDeclared(
  subscription: Pick<Subscription, 'managedBy' | 'disabledReason'>,
): boolean {
  return subscription.managedBy === 'file' && subscription.disabledReason === NOT_DECLARED_REASON;
}

/** What an input leaves out gets these (the hub derives them from `CONFIG_DEFAULTS.subscription`). */
export interface SubscriptionDefaults {
  eventTypes: readonly string[];
  contentType: Subscription['contentType'];
  format: Subscription['format'];
  timeoutMs: number;
  ordering: Subscription['ordering'];
  allowPrivateAddresses: boolean;
}

/**
 * What the subscriptions API needs of the hub, and nothing more.
 *
 * @example
 * ```ts
 * const api = subscriptionsApi({ db, cipher, wakeDeliver: () => rt.wakeDeliver(), defaults, secretsChanged: () => feed.secretsChanged() });
 * ```
 */
export interface SubscriptionsHost {
  /** The hub's database; the API opens its own transactions on it. */
  db: Kysely<unknown>;
  /** Seals signing secrets at rest (bound to `subscription:<id>`). */
  cipher: SecretCipher;
  /** Wakes this process's deliver loop (re-enabling releases waiting deliveries). */
  wakeDeliver(): void;
  /** Values for the fields an input leaves out. */
  defaults: SubscriptionDefaults;
  /**
   * Signing secrets were written (a subscription created, its secrets replaced or rotated): the
   * pull feed's in-memory screen of secrets (`hub.feed.secretsChanged`) reads them again, so a
   * new secret is not refused to an address over the failed-auth limit. Every writer of secrets
   * (admin routes, the configuration applied at start, the CLI through the admin API) comes
   * through this API, so this is the one place it is called.
   */
  secretsChanged(): void;
}

/**
 * The subscription row, or SY_PIPELINE_NOT_FOUND.
 *
 * @example
 * ```ts
 * const row = await requireSubscription(db, 'crm');
 * ```
 */
export async function requireSubscription(db: Kysely<unknown>, id: string): Promise<SubscriptionRow> {
  const row = await store.getSubscription(db, id);
  if (!row) throw notFound('subscription', id);
  return row;
}

/**
 * A row as the API shows it (never a sealed secret).
 *
 * @example
 * ```ts
 * const view = toSubscription(await requireSubscription(db, 'crm'));
 * ```
 */
export function toSubscription(r: SubscriptionRow): Subscription {
  return {
    id: r.id,
    kind: r.kind,
    url: r.url,
    eventTypes: r.event_types,
    sources: r.sources,
    secrets: r.secrets.map((s) => ({
      secretHint: s.hint,
      createdAt: s.createdAt,
      expiresAt: s.expiresAt,
      fromFile: s.fromFile === true,
    })),
    contentType: r.content_type,
    format: r.format,
    timeoutMs: r.timeout_ms,
    retryScheduleMs: r.retry_schedule_ms,
    rateLimit: r.rate_limit as Subscription['rateLimit'],
    ordering: r.ordering,
    approver: r.approver,
    approverFilters: r.approver_filters as Subscription['approverFilters'],
    allowPrivateAddresses: r.allow_private_addresses,
    disableAfterConsecutiveDead: r.disable_after_consecutive_dead,
    consecutiveDead: r.consecutive_dead,
    disabledAt: r.disabled_at,
    disabledReason: r.disabled_reason,
    managedBy: r.managed_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function sealSecrets(
  cipher: SecretCipher,
  id: string,
  secrets: readonly string[],
  now = new Date(),
  fromFile = false,
): StoredSecret[] {
  return secrets.map((secret, i) => {
    if (!isValidSecret(secret))
      throw invalid(`secrets[${i}] ${SUBSCRIPTION_FIELDS.secrets.items['x-message']}`);
    return {
      sealed: cipher.seal(secret, `subscription:${id}`),
      hint: secretHint(secret),
      // Earlier entries are newer: they sign first.
      createdAt: new Date(now.getTime() - i).toISOString(),
      expiresAt: null,
      ...(fromFile ? { fromFile: true } : {}),
    };
  });
}

/**
 * Whether `secrets` are the stored ones, in order, each as the file marks them: then nothing is
 * sealed again (a new seal would date them now, and the signing order follows the dates).
 */
function sameSecrets(
  cipher: SecretCipher,
  base: SubscriptionRow,
  secrets: readonly string[],
  fromFile: boolean,
): boolean {
  if (base.secrets.length !== secrets.length) return false;
  const opens = (stored: StoredSecret, secret: string | undefined) => {
    try {
      return cipher.open(stored.sealed, `subscription:${base.id}`) === secret;
    } catch {
      return false; // sealed under another secretKey: sealed again, as any change
    }
  };
  return base.secrets.every(
    (stored, i) =>
      stored.expiresAt === null && (stored.fromFile === true) === fromFile && opens(stored, secrets[i]),
  );
}

/** Two sets of values to store; objects read back from `jsonb` may order their keys otherwise. */
function sameValues(a: store.SubscriptionValues, b: store.SubscriptionValues): boolean {
  return isDeepStrictEqual(a, b);
}

/** The merged values to store; the schema already checked each field the input gives. */
function subscriptionValues(
  input: SubscriptionPatch,
  base: SubscriptionRow | undefined,
  defaults: SubscriptionDefaults,
  secrets: StoredSecret[],
): store.SubscriptionValues {
  const kind = input.kind ?? base?.kind ?? 'webhook';
  const url = input.url ?? base?.url ?? null;
  // The schema checks this on create; a change can turn a pull subscription into a webhook.
  if (kind === 'webhook' && !url) throw invalid('a webhook subscription needs a url');
  const format = input.format ?? base?.format ?? defaults.format;
  const eventTypes = input.eventTypes ?? base?.event_types ?? [...defaults.eventTypes];
  const approver = input.approver ?? base?.approver ?? false;
  // A change may set a FHIR format without repeating the kind, the filter or the role it must fit.
  checkSubscriptionRules({ kind, format, eventTypes, approver });
  const schedule =
    input.retryScheduleMs === undefined ? (base?.retry_schedule_ms ?? null) : input.retryScheduleMs;
  return {
    kind,
    url: kind === 'webhook' ? url : null,
    eventTypes,
    sources: input.sources === undefined ? (base?.sources ?? null) : input.sources,
    secrets,
    contentType: input.contentType ?? base?.content_type ?? defaults.contentType,
    format,
    timeoutMs: input.timeoutMs ?? base?.timeout_ms ?? defaults.timeoutMs,
    // validateSchedule words a bad schedule as the delivery code always has (SY_DELIVERY_SCHEDULE_INVALID).
    retryScheduleMs: schedule === null ? null : validateSchedule(schedule),
    rateLimit: input.rateLimit === undefined ? (base?.rate_limit ?? null) : input.rateLimit,
    ordering: input.ordering ?? base?.ordering ?? defaults.ordering,
    approver,
    approverFilters:
      input.approverFilters === undefined ? (base?.approver_filters ?? null) : input.approverFilters,
    allowPrivateAddresses:
      input.allowPrivateAddresses ?? base?.allow_private_addresses ?? defaults.allowPrivateAddresses,
    disableAfterConsecutiveDead:
      input.disableAfterConsecutiveDead === undefined
        ? (base?.disable_after_consecutive_dead ?? null)
        : input.disableAfterConsecutiveDead,
    managedBy: input.managedBy ?? base?.managed_by ?? 'api',
  };
}

/** The input without what the schema does not describe (`managedBy` is the caller's, not the input's). */
function schemaPart<T extends { managedBy?: ManagedBy }>(input: T): Omit<T, 'managedBy'> {
  const { managedBy: _, ...rest } = input;
  return rest;
}

/** The `hub.subscriptions` section: webhook and pull subscriptions, enabling and secret rotation. */
export function subscriptionsApi(host: SubscriptionsHost) {
  const { db, cipher, defaults } = host;

  /**
   * The input's `sources` each name an instance, as the config file requires (docs/api.md); in the
   * transaction that writes the subscription, the instances locked until it commits.
   */
  const knownSources = async (trx: Executor, input: SubscriptionPatch) => {
    if (input.sources || input.approverFilters?.sources) checkSources(input, await store.instanceIds(trx));
  };

  return {
    /**
     * Creates a subscription. A subscription without `secrets` gets a generated one, returned here
     * ONCE as `secret` (later only its `secretHint` is shown): webhook and pull alike, since a pull
     * subscription's secret is its feed's credential, and one without would answer 401 to all.
     *
     * @example
     * ```ts
     * const { subscription, secret } = await hub.subscriptions.create({ url: 'https://crm.example/hooks', eventTypes: ['appointment.*'] });
     * ```
     */
    async create(input: SubscriptionInput): Promise<{ subscription: Subscription; secret?: string }> {
      checkSubscriptionInput('create', schemaPart(input));
      const id = input.id ?? newId();
      let generated: string | undefined;
      let secrets = input.secrets ?? [];
      if (secrets.length === 0) {
        generated = generateSecret();
        secrets = [generated];
      }
      const fromFile = input.managedBy === 'file' && input.secrets !== undefined;
      const values = subscriptionValues(
        input,
        undefined,
        defaults,
        sealSecrets(cipher, id, secrets, new Date(), fromFile),
      );
      const row = await db.transaction().execute(async (trx) => {
        await knownSources(trx, input);
        return store.insertSubscription(trx, id, values);
      });
      if (!row) throw exists('subscription', id);
      host.secretsChanged();
      return { subscription: toSubscription(row), ...(generated ? { secret: generated } : {}) };
    },

    /**
     * Changes a subscription; fields left out stay. `secrets`, when given, replaces the signing
     * secrets (config-managed subscriptions); use `rotateSecret` for an overlap. With `managedBy:
     * 'file'` the given secrets are marked as the file's (`fromFile`), which the API refuses to
     * rotate.
     *
     * @example
     * ```ts
     * await hub.subscriptions.update(id, { eventTypes: ['appointment.*', 'slot.*'], timeoutMs: 5000 });
     * ```
     */
    async update(id: string, patch: SubscriptionPatch): Promise<Subscription> {
      checkSubscriptionInput('update', schemaPart(patch));
      // The row is locked from the read to the write: two changes at once merge one after the other.
      const { row, secretsWritten } = await db.transaction().execute(async (trx) => {
        const base = await store.lockSubscription(trx, id);
        if (!base) throw notFound('subscription', id);
        await knownSources(trx, patch);
        const fromFile = patch.managedBy === 'file';
        // Secrets the file stops declaring are kept, and become the hub's to rotate. The ones it
        // declares again as they are stay as stored, with their dates.
        const secrets = patch.secrets
          ? sameSecrets(cipher, base, patch.secrets, fromFile)
            ? base.secrets
            : sealSecrets(cipher, id, patch.secrets, new Date(), fromFile)
          : fromFile
            ? base.secrets.map(({ fromFile: _, ...s }) => s)
            : base.secrets;
        const values = subscriptionValues(patch, base, defaults, secrets);
        // A change that changes nothing (the file applied again at every start) writes nothing:
        // `updatedAt` says when the subscription last changed, not when a process last started.
        if (sameValues(values, subscriptionValues({}, base, defaults, base.secrets)))
          return { row: base, secretsWritten: false };
        const updated = await store.updateSubscription(trx, id, values);
        if (!updated) throw notFound('subscription', id);
        return { row: updated, secretsWritten: secrets !== base.secrets };
      });
      if (secretsWritten) host.secretsChanged();
      return toSubscription(row);
    },

    /** @example `const s = await hub.subscriptions.get(id);` */
    async get(id: string): Promise<Subscription> {
      return toSubscription(await requireSubscription(db, id));
    },

    /** @example `const all = await hub.subscriptions.list();` */
    async list(): Promise<Subscription[]> {
      return (await store.listSubscriptions(db)).map(toSubscription);
    },

    /**
     * Opens every stored signing secret once: throws `SY_DELIVERY_SECRET_TAMPERED` when one does not
     * open with this process's `secretKey` (sealed under another key). A start checks it before it
     * writes anything, so a process whose key differs from the one that stored the secrets is
     * refused then, not later at each delivery ("the hub could not send it").
     *
     * @example
     * ```ts
     * await hub.subscriptions.checkSealed(); // throws when the secretKey changed
     * ```
     */
    async checkSealed(): Promise<void> {
      for (const row of await store.listSubscriptions(db))
        for (const stored of row.secrets) cipher.open(stored.sealed, `subscription:${row.id}`);
    },

    /** Deletes a subscription with its deliveries. @example `await hub.subscriptions.remove(id);` */
    async remove(id: string): Promise<void> {
      if (!(await store.deleteSubscription(db, id))) throw notFound('subscription', id);
    },

    /**
     * Stops deliveries to a subscription (they wait; nothing new is fanned out to it).
     *
     * @example
     * ```ts
     * await hub.subscriptions.disable(id, 'maintenance window');
     * ```
     */
    async disable(id: string, reason = 'disabled by an operator'): Promise<Subscription> {
      const row = await store.retryingDeadlock(() =>
        db.transaction().execute((trx) => store.disableSubscription(trx, id, reason)),
      );
      if (!row) throw notFound('subscription', id);
      return toSubscription(row);
    },

    /**
     * Re-enables a subscription. `replayMissed` also sends what it missed: the dead deliveries
     * that led to the disabling and every matching event stored while it was disabled.
     *
     * @example
     * ```ts
     * const { replayed } = await hub.subscriptions.enable(id, { replayMissed: true });
     * ```
     */
    async enable(
      id: string,
      opts: { replayMissed?: boolean } = {},
    ): Promise<{ subscription: Subscription; replayed: number }> {
      const result = await db.transaction().execute(async (trx) => {
        // Read locked, as the replays below must see it: of two enables at once (a retry after a
        // timeout), the second finds it enabled and replays nothing (before, both replayed
        // every missed event, each sent twice). Its row before its deliveries, as a replay locks them.
        const before = await store.lockSubscription(trx, id);
        if (!before) throw notFound('subscription', id);
        let replayed = 0;
        if (opts.replayMissed && before.disabled_at !== null) {
          for (const dead of await deliveryStore.listDeadUnsuperseded(trx, id)) {
            await deliveryStore.insertReplay(trx, newId(), dead);
            await deliveryStore.releaseSubject(trx, id, dead.subject);
            replayed++;
          }
          if (before.kind === 'webhook') {
            replayed += await deliveryStore.insertReplaysSince(trx, before, {
              afterSequence: before.disabled_at_sequence ?? '0',
            });
          }
        }
        const row = await store.enableSubscription(trx, id);
        // Locked above: a delete waits for this transaction, or this one found no row.
        if (!row) throw notFound('subscription', id);
        await notify(trx, CHANNEL_DELIVER);
        return { row, replayed };
      });
      host.wakeDeliver();
      return { subscription: toSubscription(result.row), replayed: result.replayed };
    },

    /**
     * Disables a subscription the configuration file no longer declares ({@link NOT_DECLARED_REASON}),
     * as `disable` does: nothing new is fanned out to it, its pending deliveries wait, and its
     * signing secrets, deliveries, feed position and command credential stay. One disabled already
     * (by an operator, or after dead deliveries) stays as it was. Undone by {@link reinstate};
     * `remove` deletes it.
     *
     * @example
     * ```ts
     * const subscription = await hub.subscriptions.retire('old-crm'); // subscription.disabledAt is set
     * ```
     */
    async retire(id: string): Promise<Subscription> {
      const row = await store.retryingDeadlock(() =>
        db.transaction().execute((trx) => store.disableSubscription(trx, id, NOT_DECLARED_REASON)),
      );
      if (!row) throw notFound('subscription', id);
      return toSubscription(row);
    },

    /**
     * Enables a subscription {@link retire} disabled, now that the file declares it again, with the
     * secrets and deliveries it had (events stored meanwhile were not fanned out to it: replay
     * them with `hub.deliveries.replaySince`). The subscription when this call enabled it, else
     * `undefined`.
     *
     * @example
     * ```ts
     * if (await hub.subscriptions.reinstate('old-crm')) logger.info('old-crm is declared again: enabled');
     * ```
     */
    async reinstate(id: string): Promise<Subscription | undefined> {
      const row = await db.transaction().execute(async (trx) => {
        const enabled = await store.enableSubscription(trx, id, NOT_DECLARED_REASON);
        if (enabled) await notify(trx, CHANNEL_DELIVER);
        return enabled;
      });
      if (!row) return undefined;
      host.wakeDeliver();
      return toSubscription(row);
    },

    /**
     * Adds a new signing secret; the previous ones keep signing for `overlapMs` (default 24 h),
     * so old and new signatures are sent together while the subscriber switches. Returns the
     * new secret ONCE.
     *
     * @example
     * ```ts
     * const { secret } = await hub.subscriptions.rotateSecret(id, { overlapMs: 3_600_000 });
     * ```
     */
    async rotateSecret(
      id: string,
      opts: { overlapMs?: number; secret?: string } = {},
    ): Promise<{ subscription: Subscription; secret: string }> {
      const secret = opts.secret ?? generateSecret();
      // The row is locked from the read to the write: of two rotations at once, the second keeps
      // the first's secret (before, it wrote over it, and the secret the first answered never signed).
      const row = await db.transaction().execute(async (trx) => {
        const before = await store.lockSubscription(trx, id);
        if (!before) throw notFound('subscription', id);
        const now = new Date();
        const expiry = new Date(now.getTime() + (opts.overlapMs ?? 24 * 3_600_000)).toISOString();
        const kept = before.secrets
          .filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now.getTime())
          .map((s) => ({
            ...s,
            expiresAt: s.expiresAt !== null && s.expiresAt < expiry ? s.expiresAt : expiry,
          }));
        const [fresh] = sealSecrets(cipher, id, [secret], now);
        const after = await store.setSubscriptionSecrets(trx, id, [fresh!, ...kept]);
        if (!after) throw notFound('subscription', id);
        return after;
      });
      host.secretsChanged();
      return { subscription: toSubscription(row), secret };
    },
  };
}

/** The `hub.subscriptions` section, as the subscriptions' routes take it. */
export type SubscriptionsApi = ReturnType<typeof subscriptionsApi>;
