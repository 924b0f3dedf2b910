/**
 * Clockwise.MD payloads as the vendor sends them. The webhook is documented; the REST API record is
 * only partly known (`id`, `first_name`, `extra_fields[]` are verified), so everything else is
 * optional and read leniently.
 */

/** Every webhook event type the vendor lists. */
export const CLOCKWISE_EVENT_TYPES = [
  'create',
  'reschedule',
  'demographics_update',
  'checkin',
  'undo_checkin',
  'remove',
  'undo_remove',
  'ready',
  'undo_ready',
  'callback',
  'undo_callback',
  'discharge',
  'undo_discharge',
] as const;

export type ClockwiseEventType = (typeof CLOCKWISE_EVENT_TYPES)[number];

/** The webhook body. Older integrations send the type as `action` instead of `event_type`. */
export interface ClockwiseWebhook {
  appointment_id: number | string;
  event_type?: string;
  action?: string;
}

/** One custom field of the clinic's intake form. */
export interface ClockwiseExtraField {
  name?: string;
  label?: string;
  value?: unknown;
  [key: string]: unknown;
}

/** `GET /appointments/{id}`: only `id`, `first_name` and `extra_fields` are verified. */
export interface ClockwiseAppointment {
  id: number | string;
  first_name?: string;
  last_name?: string;
  email?: string;
  phone?: string;
  phone_number?: string;
  mobile_phone?: string;
  dob?: string;
  date_of_birth?: string;
  birth_date?: string;
  patient_id?: number | string;
  apt_time?: string;
  start_time?: string;
  appointment_time?: string;
  end_time?: string;
  time_zone?: string;
  hospital_id?: number | string;
  hospital_name?: string;
  provider_id?: number | string;
  provider_name?: string;
  reason_description?: string;
  reason_id?: number | string;
  extra_fields?: ClockwiseExtraField[];
  [key: string]: unknown;
}
