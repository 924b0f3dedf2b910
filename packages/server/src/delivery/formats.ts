/**
 * The body formats a subscription may choose (`format`), in one place for the database check,
 * the admin API's JSON Schema, the configuration file's schema and the deliver worker.
 *
 * - `cloudevents`: the stored CloudEvent (structured mode, or plain JSON per `contentType`);
 * - `fhir-r4`: the FHIR R4 resource (or Bundle) of the event's entity, `application/fhir+json`;
 * - `fhir-r4-notification`: a Subscriptions R5 Backport (R4) notification Bundle around it.
 *
 * @example
 * ```ts
 * isSubscriptionFormat('fhir-r4'); // true
 * isSubscriptionFormat('hl7v2');   // false
 * ```
 */
export const SUBSCRIPTION_FORMATS = ['cloudevents', 'fhir-r4', 'fhir-r4-notification'] as const;

export type SubscriptionFormat = (typeof SUBSCRIPTION_FORMATS)[number];

/** True for a format the hub can deliver. */
export function isSubscriptionFormat(value: unknown): value is SubscriptionFormat {
  return typeof value === 'string' && (SUBSCRIPTION_FORMATS as readonly string[]).includes(value);
}
