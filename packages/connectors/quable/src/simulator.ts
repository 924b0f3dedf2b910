/**
 * A fake Quable PIM for tests and demos: it POSTs webhook notifications to a hub the way the Quable
 * Webhook Notification Service does: the static `Authorization` header chosen when the webhook was
 * set up; a non-2xx answer or one slower than 5 seconds is a failure; at most two retries, five
 * minutes apart; after three consecutive failures the webhook is disabled until re-enabled by hand
 * (notifications raised meanwhile are not sent).
 *
 * Test code imports it as `@switchyard/connector-quable/simulator` (production code never does); it
 * imports this connector's own modules through `./testing.ts`, never by package name.
 */
import { randomUUID } from 'node:crypto';
import { type EventEnvelope, isJsonObject, type JsonObject, type JsonValue } from '@switchyard/core';
import { isSuccess, PendingTasks, postJson, withRetries } from '@switchyard/testing/simulator-kit/push';
import {
  encode,
  type Config as QuableConfig,
  type QuableNotification,
  type QuableResource,
} from './testing.ts';

/** Options of {@link QuableSimulator}. */
export interface QuableSimulatorOptions {
  /** Where notifications go (the hub's `/hooks/{instance}` URL). Can also be given per push. */
  hookUrl?: string;
  /** The exact Authorization header value; nothing is sent when undefined (to test refusals). */
  authorization?: string;
  /** Retries after a failed attempt, default 2 (Quable's). */
  maxRetries?: number;
  /** Delay between attempts, default 5 minutes (Quable's). */
  retryIntervalMs?: number;
  /** Multiplies the retry interval (e.g. 0.0001 in tests: 5 min → 30 ms). Default 1. */
  timeScale?: number;
  /**
   * An answer slower than this is a failure (the request is abandoned), default 5000 ms. Not scaled
   * by `timeScale`: tests lower it directly.
   */
  slowAfterMs?: number;
  /** Consecutive failed attempts that disable the webhook, default 3. */
  disableAfterConsecutiveFailures?: number;
  /** The simulator's clock (`created_at` of built notifications, attempt times). Default: real time. */
  now?: () => Date;
  /** The instance name used in built API links, default `acme`. */
  instance?: string;
  /** Connector settings used to encode normalized events into notifications. */
  connectorConfig?: QuableConfig;
}

/** How one attempt ended. */
export type QuableAttemptOutcome = 'ok' | 'bad_status' | 'slow' | 'error';

/** One try at delivering a notification. */
export interface QuableAttempt {
  at: Date;
  outcome: QuableAttemptOutcome;
  /** null when there was no answer in time (slow) or none at all (error). */
  status: number | null;
  body: string;
  error?: string;
}

/** What happened to one notification. */
export interface QuablePushRecord {
  notification: QuableNotification;
  attempts: QuableAttempt[];
  delivered: boolean;
  /** Every allowed attempt failed, or the webhook got disabled in between. */
  failed: boolean;
  /** Not sent at all: the webhook was disabled. */
  skipped: boolean;
}

/**
 * A Quable PIM stand-in that speaks real HTTP.
 *
 * @example
 * ```ts
 * const sim = new QuableSimulator({ hookUrl: `${hub}/hooks/catalog`, authorization: 'Bearer 0123456789abcdef', timeScale: 0.0001 });
 * await sim.push(sim.notification('document.update', { code: 'product_blue_pant', document_type_code: 'product' }));
 * sim.webhookStatus; // 'enabled', or 'disabled' after three failures in a row
 * ```
 */
export class QuableSimulator {
  readonly pushes: QuablePushRecord[] = [];
  /** `enabled` until three consecutive failures; see {@link enableWebhook}. */
  webhookStatus: 'enabled' | 'disabled' = 'enabled';
  /** Failed attempts since the last success. */
  consecutiveFailures = 0;

  readonly #options: QuableSimulatorOptions;
  readonly #pending = new PendingTasks();

  constructor(options: QuableSimulatorOptions = {}) {
    this.#options = options;
  }

  /** The simulator's current time. */
  now(): Date {
    return this.#options.now?.() ?? new Date();
  }

  /**
   * A notification as Quable builds it: a new uuid, created now by `createdBy`, with API links. The
   * resource type defaults from the code (`media.*` → asset, `*.finish` → the process kind); a
   * `*.finish` gets a `process` block.
   */
  notification(
    code: string,
    resource: Partial<QuableResource> & { code: string },
    options: { createdBy?: string; process?: QuableNotification['process'] } = {},
  ): QuableNotification {
    const uuid = randomUUID();
    const family = code.split('.')[0] ?? code;
    const type = resource.type ?? (family === 'media' ? 'asset' : family);
    const base = `https://${this.#options.instance ?? 'acme'}.quable.com/api`;
    const collection = type === 'asset' ? 'assets' : `${type}s`;
    const process =
      options.process ??
      (code.endsWith('.finish')
        ? { type: family, id: resource.code, correlationId: randomUUID() }
        : { correlationId: randomUUID() });
    return {
      uuid,
      code,
      links: [{ rel: 'self', href: `/events/${uuid}` }],
      created_at: this.now()
        .toISOString()
        .replace(/\.\d{3}Z$/, '+00:00'),
      created_by: options.createdBy ?? 'simulator',
      resource: {
        links: [{ rel: 'self', href: `${base}/${collection}/${resource.code}` }],
        locales: { updated: [], inherited: [] },
        ...resource,
        type,
      },
      process,
    };
  }

  /** A notification from a body, or from a normalized event through the connector's `encode`. */
  toNotification(input: QuableNotification | EventEnvelope | JsonObject): QuableNotification {
    if (isJsonObject(input as JsonValue) && 'specversion' in input) {
      const config = this.#options.connectorConfig ?? { authorization: this.#options.authorization ?? '' };
      return encode(input as EventEnvelope, config).body as unknown as QuableNotification;
    }
    return input as QuableNotification;
  }

  /**
   * Sends one notification with Quable's habits: a failure (non-2xx, no answer, or slower than
   * `slowAfterMs`) is retried up to `maxRetries` times `retryIntervalMs` apart; every failure counts
   * towards disabling the webhook, every success resets the count. Nothing is sent while disabled.
   */
  push(
    input: QuableNotification | EventEnvelope | JsonObject,
    options: { hookUrl?: string; headers?: Record<string, string> } = {},
  ): Promise<QuablePushRecord> {
    return this.#pending.track(this.#deliver(this.toNotification(input), options));
  }

  /** Re-enables a disabled webhook (Quable needs a person to do it). */
  enableWebhook(): void {
    this.webhookStatus = 'enabled';
    this.consecutiveFailures = 0;
  }

  /** Resolves when every push started so far has finished. */
  async idle(): Promise<void> {
    await this.#pending.idle();
  }

  async #deliver(
    notification: QuableNotification,
    options: { hookUrl?: string; headers?: Record<string, string> },
  ): Promise<QuablePushRecord> {
    const hookUrl = options.hookUrl ?? this.#options.hookUrl;
    if (!hookUrl) throw new Error('QuableSimulator needs a hookUrl (in the options or the constructor)');
    const record: QuablePushRecord = {
      notification,
      attempts: [],
      delivered: false,
      failed: false,
      skipped: false,
    };
    this.pushes.push(record);
    if (this.webhookStatus === 'disabled') {
      record.skipped = true;
      return record;
    }
    const habit = {
      delaysMs: Array<number>(this.#options.maxRetries ?? 2).fill(
        this.#options.retryIntervalMs ?? 5 * 60_000,
      ),
      timeScale: this.#options.timeScale ?? 1,
    };
    const delivered = await withRetries(
      habit,
      record.attempts,
      () => this.#send(hookUrl, notification, options.headers),
      (a) => {
        if (a.outcome !== 'ok') return false;
        // Counted as the answer arrives: other notifications in flight see it at once.
        this.consecutiveFailures = 0;
        return true;
      },
      {
        // Another notification's failures may have disabled the webhook while this one waited.
        before: () => this.#isDisabled(),
        afterFailure: () => {
          this.consecutiveFailures++;
          if (this.consecutiveFailures < (this.#options.disableAfterConsecutiveFailures ?? 3)) return false;
          this.webhookStatus = 'disabled';
          return true;
        },
      },
    );
    if (delivered) record.delivered = true;
    else record.failed = true;
    return record;
  }

  #isDisabled(): boolean {
    return this.webhookStatus === 'disabled';
  }

  async #send(
    hookUrl: string,
    notification: QuableNotification,
    extra?: Record<string, string>,
  ): Promise<QuableAttempt> {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...extra };
    if (this.#options.authorization !== undefined) headers.authorization = this.#options.authorization;
    const at = this.now();
    const slowAfterMs = this.#options.slowAfterMs ?? 5000;
    // Quable counts an answer slower than slowAfterMs as a failure: that is the timeout.
    const r = await postJson(hookUrl, headers, notification, slowAfterMs);
    if (r.status !== null)
      return { at, outcome: isSuccess(r.status) ? 'ok' : 'bad_status', status: r.status, body: r.body };
    if (r.timedOut)
      return { at, outcome: 'slow', status: null, body: '', error: `no answer within ${slowAfterMs} ms` };
    return { at, outcome: 'error', status: null, body: '', error: r.error ?? 'no answer' };
  }
}
