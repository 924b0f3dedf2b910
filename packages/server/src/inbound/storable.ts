/**
 * What Postgres refuses of a vendor's notification, and the storable form of one it refused. A
 * pull cannot refuse such a notification: the vendor has handed it over (Docplanner's pull is
 * destructive), so the poller stores it in one of the forms made here rather than lose it, and the
 * rest of its batch with it. A push is stored sanitized too (pipeline/ingest.ts): a vendor drops
 * the 400 it got before, and would send the same bytes again anyway.
 */
import { type JsonObject, type JsonValue, mapJsonStrings, storableText } from '@switchyard/core';
import type { NewInbound } from './store.ts';

/**
 * Why the vendor's payload itself cannot be stored, or undefined when the failure is the hub's:
 * Postgres data exceptions (class 22: NUL characters, unpaired surrogates) and program limits
 * (class 54: nesting too deep for jsonb), or a stack overflow while serializing a deeply nested
 * payload. Any other RangeError (say, "Invalid string length" from the driver) is a limit of the
 * hub, not a fault of the request: the vendor must retry it, not drop it. Push and pull share it,
 * so the two paths cannot disagree on whose fault a failed write is.
 *
 * @example
 * ```ts
 * unstorableReason({ code: '22P05', message: 'unsupported Unicode escape sequence' });
 * // 'the payload cannot be stored: unsupported Unicode escape sequence'
 * unstorableReason(new Error('Connection terminated')); // undefined: the hub's failure
 * ```
 */
export function unstorableReason(error: unknown): string | undefined {
  if (error instanceof RangeError) {
    return /call stack/i.test(error.message) ? 'the payload is too deeply nested to store' : undefined;
  }
  const code = (error as { code?: unknown })?.code;
  if (typeof code === 'string' && (code.startsWith('22') || code.startsWith('54'))) {
    return `the payload cannot be stored: ${String((error as { message?: unknown }).message ?? code)}`;
  }
  return undefined;
}

/**
 * `value` with every NUL and lone surrogate in its strings and keys replaced by U+FFFD, the rest
 * as it was (the same object when nothing needed replacing); undefined when it is nested too deeply
 * to walk (too deep to store as well: Postgres and the serializer both give up before this does).
 *
 * @example
 * ```ts
 * storableJson({ comment: 'call me\u0000back' }); // { comment: 'call me\uFFFDback' }
 * ```
 */
export function storableJson(value: JsonValue): JsonValue | undefined {
  try {
    return mapJsonStrings(value, storableText);
  } catch (error) {
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

/** How {@link storableForms} changed a notification; recorded in its `meta.unstorable`. */
export type StoredAs = 'sanitized' | 'placeholder';

/** One storable form of a refused notification. */
export interface StorableForm {
  item: NewInbound;
  storedAs: StoredAs;
}

/**
 * The forms in which a notification Postgres refused can still be stored, best first: `sanitized`
 * (its refused characters replaced by U+FFFD, in the payload, meta, headers and text columns alike),
 * when that changes anything; then `placeholder` (a small payload that says why, the text columns
 * sanitized), which Postgres takes unless the keys themselves are what it refuses (say, a dedupe key
 * too long for its index) or the hub's statement is failing. Both keep the message's id,
 * type, dedupe key and ordering key, and mark it in `meta.unstorable` (`{ reason, storedAs }`):
 * `meta` is what the connector's `normalize` gets besides the payload, so a connector can tell. A
 * placeholder has no vendor data, so a connector fails it (Docplanner: "the stored payload has no
 * data object"), and the message shows as failed instead of being lost.
 *
 * @example
 * ```ts
 * const [sanitized, placeholder] = storableForms(item, 'the payload cannot be stored: unsupported Unicode escape sequence');
 * sanitized.item.meta; // { source: 'pull', unstorable: { reason: '…', storedAs: 'sanitized' } }
 * ```
 */
export function storableForms(item: NewInbound, reason: string): StorableForm[] {
  const maybe = (s: string | null) => (s === null ? null : storableText(s));
  const columns = {
    route: storableText(item.route),
    dedupeKey: storableText(item.dedupeKey),
    vendorType: storableText(item.vendorType),
    orderingKey: maybe(item.orderingKey),
    occurredAt: maybe(item.occurredAt),
    sourceIp: maybe(item.sourceIp),
  };
  const headers =
    item.headers === null ? null : (storableJson(item.headers) as Record<string, string> | undefined);
  const meta = item.meta === null ? null : storableJson(item.meta);
  const marked = (storedAs: StoredAs): JsonObject => ({
    ...(meta !== null && meta !== undefined && typeof meta === 'object' && !Array.isArray(meta) ? meta : {}),
    unstorable: { reason, storedAs },
  });
  const forms: StorableForm[] = [];
  const payload = storableJson(item.payload);
  const sanitized: NewInbound = {
    ...item,
    ...columns,
    payload: payload ?? item.payload,
    meta: marked('sanitized'),
    headers: headers ?? null,
  };
  const changed =
    payload !== undefined &&
    headers !== undefined &&
    meta !== undefined &&
    (payload !== item.payload ||
      headers !== item.headers ||
      meta !== item.meta ||
      (Object.keys(columns) as (keyof typeof columns)[]).some((k) => columns[k] !== item[k]));
  if (changed) forms.push({ item: sanitized, storedAs: 'sanitized' });
  forms.push({
    item: {
      ...item,
      ...columns,
      payload: { unstorable: `${reason}; this placeholder was stored in its place` },
      meta: marked('placeholder'),
      headers: headers ?? null,
    },
    storedAs: 'placeholder',
  });
  return forms;
}
