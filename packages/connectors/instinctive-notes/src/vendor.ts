/**
 * Instinctive Notes webhook payloads, as its developer page shows them. Everything but the envelope's
 * `type` is optional here: only one sample is public, so the code reads defensively.
 */

/** The event types Instinctive Notes documents. */
export type SoapNoteEventType = 'soap_note.created' | 'soap_note.updated';

export const SOAP_NOTE_TYPES: readonly SoapNoteEventType[] = ['soap_note.created', 'soap_note.updated'];

/** An exercise the practitioner prescribed in the note. */
export interface ExercisePrescription {
  id?: number;
  exercise_id?: number;
  exercise_external_ref?: string;
  name?: string;
  instructions?: string;
  sets?: number;
  reps?: number;
  hold_for?: string;
  rest_time?: string;
  times_per_day?: number;
  times_per_week?: number;
  tools?: string;
  [key: string]: unknown;
}

/** A product the practitioner recommended in the note. */
export interface ProductPrescription {
  product_id?: number;
  product_external_ref?: string;
  name?: string;
  [key: string]: unknown;
}

/** The SOAP note record (the API's singular response), sent whole in `data.object`. */
export interface SoapNote {
  id: number | string;
  /** Instinctive Notes' id of the patient (a "client"). */
  client_id?: number | string;
  /** The patient's id in the clinic's own system. */
  client_external_ref?: string;
  /** The author's display name, e.g. "Simon Jones". */
  created_by?: string;
  created_at?: string;
  updated_at?: string;
  /** When the patient was seen (the encounter). */
  seen_at?: string;
  /** `final` or `draft`. */
  state?: string;
  /** The note template's name, e.g. "Standard Treatment". */
  name?: string;
  exercise_prescriptions?: ExercisePrescription[];
  product_prescriptions?: ProductPrescription[];
  recommendations?: string;
  /** The SOAP sections and anything else the record carries. */
  [key: string]: unknown;
}

/** What Instinctive Notes POSTs: an Event object. */
export interface WebhookEvent {
  /** e.g. `soap_note.created`. */
  type: string;
  /** When the event was created (a "Send test" makes a new one, with the old note inside). */
  created_at?: string;
  data?: { object?: SoapNote | Record<string, unknown> };
}
