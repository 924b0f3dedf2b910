import { SwitchyardError } from '@switchyard/core';
import { isSubscriptionFormat, SUBSCRIPTION_FORMATS } from '../../delivery/formats.ts';
import { validateSchedule } from '../../delivery/retry-schedule.ts';
import { secretHint } from '../../delivery/secret-box.ts';
import { generateSecret, isValidSecret } from '../../delivery/sign.ts';
import { fhirFilterProblem } from '../../fhir/subscription.ts';
import * as q from '../../storage/queries.ts';
import type { Subscription, SubscriptionInput } from '../api-types.ts';
import { invalidTypePatterns } from '../fanout.ts';
import { newId } from '../ids.ts';
import type { SecretCipher } from '../shared.ts';
import { invalid, notFound, toSubscription } from '../views.ts';
import { type HubContext, requireSubscription } from './context.ts';

function sealSecrets(
  cipher: SecretCipher,
  id: string,
  secrets: readonly string[],
  now = new Date(),
  fromFile = false,
): q.StoredSecret[] {
  return secrets.map((secret, i) => {
    if (!isValidSecret(secret)) throw invalid(`secrets[${i}] is not a valid whsec_ signing secret`);
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

function subscriptionValues(
  input: SubscriptionInput,
  base: q.SubscriptionRow | undefined,
  secrets: q.StoredSecret[],
): q.SubscriptionValues {
  const kind = input.kind ?? base?.kind ?? 'webhook';
  const url = input.url ?? base?.url ?? null;
  if (kind === 'webhook') {
    if (!url) throw invalid('a webhook subscription needs a url');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw invalid('url is not an absolute URL');
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw invalid('url must be http or https');
  }
  const eventTypes = input.eventTypes ?? base?.event_types ?? ['*'];
  const bad = invalidTypePatterns(eventTypes);
  if (eventTypes.length === 0 || bad.length > 0) {
    throw invalid(`eventTypes must be exact types, entity.* or *; bad: ${bad.join(', ')}`, { bad });
  }
  const timeoutMs = input.timeoutMs ?? base?.timeout_ms ?? 15_000;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 300_000)
    throw invalid('timeoutMs must be 1..300000');
  let schedule =
    input.retryScheduleMs === undefined ? (base?.retry_schedule_ms ?? null) : input.retryScheduleMs;
  if (schedule !== null) schedule = validateSchedule(schedule);
  const contentType = input.contentType ?? base?.content_type ?? 'application/cloudevents+json';
  if (contentType !== 'application/cloudevents+json' && contentType !== 'application/json') {
    throw invalid('contentType must be application/cloudevents+json or application/json');
  }
  const format = input.format ?? base?.format ?? 'cloudevents';
  if (!isSubscriptionFormat(format)) {
    throw invalid(`format must be one of ${SUBSCRIPTION_FORMATS.join(', ')}`, { format });
  }
  if (format !== 'cloudevents' && kind !== 'webhook') {
    // The pull feed serves CloudEvents; a FHIR client reads current state from /fhir/r4 instead
    // (docs/delivery.md, "Formats").
    throw invalid(`format ${format} is for webhook subscriptions; a pull feed serves CloudEvents`);
  }
  if (format !== 'cloudevents') {
    const problem = fhirFilterProblem(eventTypes);
    if (problem) throw invalid(problem, { format, eventTypes });
  }
  const deadLimit =
    input.disableAfterConsecutiveDead === undefined
      ? (base?.disable_after_consecutive_dead ?? null)
      : input.disableAfterConsecutiveDead;
  if (deadLimit !== null && (!Number.isInteger(deadLimit) || deadLimit < 1))
    throw invalid('disableAfterConsecutiveDead must be a positive integer');
  const ordering = input.ordering ?? base?.ordering ?? 'hold';
  if (ordering !== 'hold' && ordering !== 'release') throw invalid('ordering must be hold or release');
  return {
    kind,
    url: kind === 'webhook' ? url : null,
    eventTypes,
    sources: input.sources === undefined ? (base?.sources ?? null) : input.sources,
    secrets,
    contentType,
    format,
    timeoutMs,
    retryScheduleMs: schedule,
    rateLimit: input.rateLimit === undefined ? (base?.rate_limit ?? null) : input.rateLimit,
    ordering,
    approver: input.approver ?? base?.approver ?? false,
    approverFilters:
      input.approverFilters === undefined ? (base?.approver_filters ?? null) : input.approverFilters,
    allowPrivateAddresses: input.allowPrivateAddresses ?? base?.allow_private_addresses ?? false,
    disableAfterConsecutiveDead: deadLimit,
    managedBy: input.managedBy ?? base?.managed_by ?? 'api',
  };
}

/** The `hub.subscriptions` section: webhook and pull subscriptions, enabling and secret rotation. */
export function subscriptionsApi(ctx: HubContext) {
  const { db, rt, cipher } = ctx;

  return {
    /**
     * Creates a subscription. A webhook subscription without `secrets` gets a generated one,
     * returned here ONCE as `secret` (later only its `secretHint` is shown).
     *
     * @example
     * ```ts
     * const { subscription, secret } = await hub.subscriptions.create({ url: 'https://crm.example/hooks', eventTypes: ['appointment.*'] });
     * ```
     */
    async create(input: SubscriptionInput): Promise<{ subscription: Subscription; secret?: string }> {
      const id = input.id ?? newId();
      if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,99}$/.test(id))
        throw invalid('subscription id must be 1..100 letters, digits, _ . -');
      let generated: string | undefined;
      let secrets = input.secrets ?? [];
      if ((input.kind ?? 'webhook') === 'webhook' && secrets.length === 0) {
        generated = generateSecret();
        secrets = [generated];
      }
      const fromFile = input.managedBy === 'file' && input.secrets !== undefined;
      const values = subscriptionValues(
        input,
        undefined,
        sealSecrets(cipher, id, secrets, new Date(), fromFile),
      );
      if (await q.getSubscription(db, id)) {
        throw new SwitchyardError('SY_PIPELINE_CONFLICT', `subscription ${JSON.stringify(id)} exists`);
      }
      const row = await q.insertSubscription(db, id, values);
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
    async update(id: string, patch: SubscriptionInput): Promise<Subscription> {
      const base = await requireSubscription(db, id);
      const fromFile = patch.managedBy === 'file';
      // Secrets the file stops declaring are kept, and become the hub's to rotate.
      const secrets = patch.secrets
        ? sealSecrets(cipher, id, patch.secrets, new Date(), fromFile)
        : fromFile
          ? base.secrets.map(({ fromFile: _, ...s }) => s)
          : base.secrets;
      const row = await q.updateSubscription(db, id, subscriptionValues(patch, base, secrets));
      if (!row) throw notFound('subscription', id);
      return toSubscription(row);
    },

    /** @example `const s = await hub.subscriptions.get(id);` */
    async get(id: string): Promise<Subscription> {
      return toSubscription(await requireSubscription(db, id));
    },

    /** @example `const all = await hub.subscriptions.list();` */
    async list(): Promise<Subscription[]> {
      return (await q.listSubscriptions(db)).map(toSubscription);
    },

    /** Deletes a subscription with its deliveries. @example `await hub.subscriptions.remove(id);` */
    async remove(id: string): Promise<void> {
      if (!(await q.deleteSubscription(db, id))) throw notFound('subscription', id);
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
      const row = await q.disableSubscription(db, id, reason);
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
      const before = await requireSubscription(db, id);
      const result = await db.transaction().execute(async (trx) => {
        let replayed = 0;
        if (opts.replayMissed && before.disabled_at !== null) {
          for (const dead of await q.listDeadUnsuperseded(trx, id)) {
            await q.insertReplay(trx, newId(), dead);
            await q.releaseSubject(trx, id, dead.subject);
            replayed++;
          }
          if (before.kind === 'webhook') {
            replayed += await q.insertReplaysSince(trx, before, {
              afterSequence: before.disabled_at_sequence ?? '0',
            });
          }
        }
        const row = await q.enableSubscription(trx, id);
        await q.notify(trx, q.CHANNEL_DELIVER);
        return { row: row!, replayed };
      });
      rt.wakeDeliver();
      return { subscription: toSubscription(result.row), replayed: result.replayed };
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
      const row = await requireSubscription(db, id);
      const secret = opts.secret ?? generateSecret();
      const now = new Date();
      const expiry = new Date(now.getTime() + (opts.overlapMs ?? 24 * 3_600_000)).toISOString();
      const kept = row.secrets
        .filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now.getTime())
        .map((s) => ({
          ...s,
          expiresAt: s.expiresAt !== null && s.expiresAt < expiry ? s.expiresAt : expiry,
        }));
      const [fresh] = sealSecrets(cipher, id, [secret], now);
      await q.setSubscriptionSecrets(db, id, [fresh!, ...kept]);
      return { subscription: toSubscription(await requireSubscription(db, id)), secret };
    },
  };
}
