import { isJsonObject, type JsonObject } from '../json.ts';
import type { StateStore } from './types.ts';

/**
 * Fields of an entity snapshot that describe one event, not the entity: they are never carried from
 * the known state into the next event (`changes` and `previous` say what this event changed,
 * `enrichment` how this event was read, `vendor` is this notification's own vendor record).
 */
export const EVENT_SCOPED_FIELDS: readonly string[] = ['changes', 'previous', 'enrichment', 'vendor'];

/**
 * Fields that hold only for the status they came with (a workflow step, who cancelled and when):
 * carried from the known state only while the event's `status` is the known one.
 */
export const STATUS_BOUND_FIELDS: readonly string[] = ['workflowStep', 'cancelledAt', 'cancelledBy'];

/**
 * The state-store key under which an entity's known state is kept: per subject (hub id), so it
 * survives vendor id changes (a Docplanner move, a BookingBug booking seen in two payload shapes).
 *
 * @example
 * ```ts
 * knownStateKey('appointment/3f0c…'); // 'known:appointment/3f0c…'
 * ```
 */
export function knownStateKey(subject: string): string {
  return `known:${subject}`;
}

/** How {@link withKnownState} treats particular fields of one event. */
export interface KnownStateOptions {
  /** Fields the vendor said are now empty (e.g. Docplanner's `insurance: null`): not carried. */
  cleared?: readonly string[];
  /**
   * Object fields whose parts come from different notifications (Docplanner's `payment`: whether
   * it is required from the booking, its status from a payment notification): merged one level
   * deep instead of replaced whole.
   */
  nested?: readonly string[];
}

/**
 * An event's `data` completed from the entity's last known state: a top-level field the
 * notification carries replaces the known one whole; a field it leaves out keeps its known value,
 * except event-scoped fields ({@link EVENT_SCOPED_FIELDS}), fields bound to a status the event
 * leaves ({@link STATUS_BOUND_FIELDS}) and `options.cleared`. Pure: {@link rememberKnownState}
 * also stores it.
 *
 * @example
 * ```ts
 * withKnownState({ id: 'h1', status: 'cancelled' }, { id: 'h1', status: 'booked', patient: { name: 'Ann' } });
 * // { id: 'h1', status: 'cancelled', patient: { name: 'Ann' } }
 * ```
 */
export function withKnownState(
  fresh: JsonObject,
  known: JsonObject | undefined,
  options: KnownStateOptions = {},
): JsonObject {
  const { cleared = [], nested = [] } = options;
  const out: JsonObject = {};
  if (known !== undefined) {
    const statusLeft = fresh.status !== undefined && fresh.status !== known.status;
    for (const [key, value] of Object.entries(known)) {
      if (EVENT_SCOPED_FIELDS.includes(key) || cleared.includes(key)) continue;
      if (statusLeft && STATUS_BOUND_FIELDS.includes(key)) continue;
      out[key] = value;
    }
  }
  for (const [key, value] of Object.entries(fresh)) {
    const before = out[key];
    out[key] =
      nested.includes(key) && isJsonObject(value) && isJsonObject(before) ? { ...before, ...value } : value;
  }
  return out;
}

/**
 * The one way a connector makes an event carry its entity's known state (docs/events.md, "What
 * `data` carries"): reads the known state of `subject`, completes `data` with
 * {@link withKnownState}, stores the result (without event-scoped fields) as the new known state
 * and returns the completed data. Call it once per event, after the connector decided what the
 * notification means and before it emits.
 *
 * @example
 * ```ts
 * const data = await rememberKnownState(ctx.state, `appointment/${hubId}`, appointment, { cleared: ['insurance'] });
 * return emit({ type: 'appointment.updated', subject: `appointment/${hubId}`, time, data });
 * ```
 */
export async function rememberKnownState(
  state: StateStore,
  subject: string,
  data: JsonObject,
  options: KnownStateOptions = {},
): Promise<JsonObject> {
  const key = knownStateKey(subject);
  const known = await state.get<JsonObject>(key);
  const filled = withKnownState(data, known, options);
  const next: JsonObject = {};
  for (const [field, value] of Object.entries(filled)) {
    if (!EVENT_SCOPED_FIELDS.includes(field)) next[field] = value;
  }
  await state.set(key, next);
  return filled;
}
