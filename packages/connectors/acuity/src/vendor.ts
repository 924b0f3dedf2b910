/**
 * Acuity Scheduling payloads, as its developer docs describe them (fields it does not always send
 * are optional). Webhooks carry ids only; the appointment itself is read from the API.
 */

/**
 * What Acuity POSTs, `application/x-www-form-urlencoded` (developers.acuityscheduling.com/docs/webhooks):
 * `action` (`scheduled`, `rescheduled`, `canceled`, `changed`, `order.completed`), `id` (the
 * appointment's or order's), and for appointments `calendarID` and `appointmentTypeID`.
 */
export interface AcuityWebhook {
  action: string;
  id: string;
  calendarID?: string;
  appointmentTypeID?: string;
  [field: string]: string | undefined;
}

/** `GET /api/v1/appointments/:id` (developers.acuityscheduling.com/reference/get-appointments-id). */
export interface AcuityAppointment {
  id: number;
  firstName?: string;
  lastName?: string;
  phone?: string;
  email?: string;
  /** ISO 8601 with a compact offset: `2013-07-02T10:15:00-0700`. */
  datetime?: string;
  /** Minutes, as a string: `"60"`. */
  duration?: string;
  /** The appointment type's name. */
  type?: string;
  appointmentTypeID?: number;
  /** The calendar's name (a practitioner or a room). */
  calendar?: string;
  calendarID?: number;
  /** IANA time zone of the calendar, e.g. `America/New_York`. */
  timezone?: string;
  notes?: string;
  location?: string;
  /** Present once cancelled (PUT /appointments/:id/cancel answers with it true). */
  canceled?: boolean;
  [field: string]: unknown;
}
