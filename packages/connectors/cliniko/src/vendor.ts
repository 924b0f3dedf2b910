/**
 * Cliniko's individual appointment as its API answers it (https://github.com/redguava/cliniko-api,
 * sections/individual_appointments.md; docs.api.cliniko.com). Lenient: fields Cliniko may omit or
 * null are optional.
 */
export interface Link {
  links?: { self?: string };
}

export interface IndividualAppointment {
  id: string | number;
  created_at?: string;
  updated_at: string;
  starts_at?: string;
  ends_at?: string;
  cancelled_at?: string | null;
  deleted_at?: string | null;
  archived_at?: string | null;
  cancellation_note?: string | null;
  cancellation_reason?: number | null;
  did_not_arrive?: boolean;
  patient_arrived?: boolean;
  patient_name?: string | null;
  notes?: string | null;
  appointment_type?: Link;
  business?: Link;
  practitioner?: Link;
  patient?: Link;
  links?: { self?: string };
}

/** One page of `GET /individual_appointments`. */
export interface AppointmentPage {
  individual_appointments: IndividualAppointment[];
  total_entries?: number;
  links?: { self?: string; next?: string; previous?: string };
}
