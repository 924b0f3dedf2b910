/**
 * What the FHIR read side needs from the process it runs in. It is built on this interface only
 * (never on the hub's internals or other server folders, so the pipeline may import the mapping
 * without an import cycle): `http/routes/fhir.ts` assembles it from the current-state projection
 * (entities/current.ts), the read-token store and the hub's subscription filter rule; a test may
 * assemble it from anything that fits.
 */
import type { EventEnvelope } from '@switchyard/core';
import type { PatientMatch, TimeBound } from './search.ts';

/** One entity's current state, as the read side needs it. */
export interface FhirEntity {
  /** `<kind>/<hub id>`. */
  subject: string;
  /** The connector instance of its latest event. */
  instanceId: string;
  /** Its latest event as stored (`data` is the entity's known state). */
  envelope: EventEnvelope;
  /** When the hub last changed it, an ISO instant (the resource's `meta.lastUpdated`). */
  updatedAt: string;
  /** In a search's answer: its sort value, opaque, for the next page's {@link FhirEntityQuery.after}. */
  orderKey?: string;
}

/** A search of the current state, as the read side asks it; every given filter must hold. */
export interface FhirEntityQuery {
  /** The entity kind, e.g. `appointment`. */
  kind: string;
  /** Only these instances; undefined: all. */
  instances?: readonly string[];
  /** `data` contains this object (e.g. `{ domain: 'clinical' }`). */
  data?: Record<string, string>;
  /** `data.patient` matches one of these (an OR). */
  patient?: readonly PatientMatch[];
  /** Only these subjects (`<kind>/<hub id>`); empty: nothing matches. */
  subjects?: readonly string[];
  /** None of these subjects. */
  notSubjects?: readonly string[];
  /** The status is one of these (a document's as DocumentReference.status has it); empty: nothing matches. */
  statuses?: readonly string[];
  /** Bounds on `data.start`. */
  start?: readonly TimeBound[];
  /** Bounds on when the hub last changed the entity ({@link FhirEntity.updatedAt}). */
  updated?: readonly TimeBound[];
  /**
   * The order, ties broken by subject in the same direction (default: by subject): `start` is
   * `data.start` (an entity without one after all others ascending, first descending), `updated`
   * when the hub last changed it.
   */
  order?: { by: 'subject' | 'start' | 'updated'; descending?: boolean };
  /** Keyset paging: rows after this one in the order (`key`: its {@link FhirEntity.orderKey}). */
  after?: { subject: string; key?: string };
  limit: number;
}

/** The subscription a read token belongs to, with the filters that decide what it may read. */
export interface ReadTokenOwner {
  subscriptionId: string;
  /** The subscription's event type patterns (`*`, `appointment.*`, exact types). */
  eventTypes: readonly string[];
  /** The instances it covers; null: all. */
  sources: readonly string[] | null;
}

/**
 * The host of the FHIR read side.
 *
 * @example
 * ```ts
 * const reader = createFhirReader(host);
 * const appointment = await reader.read({ kind: 'admin' }, 'Appointment', id);
 * ```
 */
export interface FhirReadHost {
  /** The current state of one entity by subject, or undefined. */
  getEntity(subject: string): Promise<FhirEntity | undefined>;
  /** Entities matching a query, in its order, each with its `orderKey`. */
  searchEntities(query: FhirEntityQuery): Promise<FhirEntity[]>;
  /** How many entities match a query's filters (`order`, `after`, `limit` unused). */
  countEntities(query: FhirEntityQuery): Promise<number>;
  /** The database's estimate of how many entities match a query's filters, read from its statistics (nothing counted). */
  estimateEntities(query: FhirEntityQuery): Promise<number>;
  /** The owner of a read token, by the token's SHA-256 (hex); undefined for an unknown token. */
  findReadToken(tokenHash: string): Promise<ReadTokenOwner | undefined>;
  /** Stores a subscription's read token hash, replacing its previous one; false when there is no such subscription. */
  setReadToken(subscriptionId: string, tokenHash: string, hint: string): Promise<boolean>;
  /** Deletes a subscription's read token; false when it had none. */
  deleteReadToken(subscriptionId: string): Promise<boolean>;
  /** The hub's rule for "this event type passes these subscription patterns" (subscriptions/type-patterns.ts). */
  typeMatches(type: string, patterns: readonly string[]): boolean;
}
