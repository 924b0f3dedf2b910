/**
 * Calendly webhook payloads (API v2), as developer.calendly.com documents them (fixtures/README.md
 * cites the pages). Lenient: fields Calendly sends as null or leaves out are optional.
 */

/** The scheduled event (the meeting) an invitee booked, as embedded in invitee payloads. */
export interface VendorScheduledEvent {
  /** `https://api.calendly.com/scheduled_events/<uuid>`. */
  uri?: string;
  /** The event type's name, e.g. `30 Minute Consultation`. */
  name?: string;
  /** `active` or `canceled`. */
  status?: string;
  /** UTC, e.g. `2026-03-10T10:30:00.000000Z`. */
  start_time?: string;
  end_time?: string;
  event_type?: string;
  location?: {
    type?: string;
    location?: string | null;
    join_url?: string | null;
    [key: string]: unknown;
  } | null;
  event_memberships?: Array<{ user?: string; user_email?: string; user_name?: string }>;
  [key: string]: unknown;
}

/** Who cancelled and why (`invitee.canceled`). */
export interface VendorCancellation {
  /** A name (the invitee's or the host's), not a URI. */
  canceled_by?: string;
  reason?: string | null;
  /** `host` or `invitee`. */
  canceler_type?: string;
  created_at?: string;
}

/** The invitee: one person's booking of a scheduled event; the payload of `invitee.*` webhooks. */
export interface VendorInvitee {
  /** `https://api.calendly.com/scheduled_events/<event uuid>/invitees/<invitee uuid>`: the booking's id. */
  uri: string;
  email?: string;
  name?: string;
  first_name?: string | null;
  last_name?: string | null;
  /** `active` or `canceled`. */
  status?: string;
  timezone?: string | null;
  text_reminder_number?: string | null;
  /** The invitee this one replaced (a reschedule), or null. */
  old_invitee?: string | null;
  /** The invitee that replaced this one (a reschedule), or null. */
  new_invitee?: string | null;
  /** True on the `invitee.canceled` of the invitee a reschedule replaced. */
  rescheduled?: boolean;
  cancellation?: VendorCancellation;
  scheduled_event?: VendorScheduledEvent;
  created_at?: string;
  updated_at?: string;
  [key: string]: unknown;
}

/** What Calendly POSTs: one event per request, with no delivery id. */
export interface VendorEvent {
  /** `invitee.created`, `invitee.canceled`, `routing_form_submission.created`, … */
  event: string;
  /** When Calendly created the webhook event, UTC. */
  created_at?: string;
  /** The user or organization URI that owns the subscription. */
  created_by?: string;
  payload?: VendorInvitee | Record<string, unknown>;
  [key: string]: unknown;
}
