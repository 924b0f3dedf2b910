/**
 * BookingBug (JRNI) push payloads: the whole purchase, as in the vendor's sample. Fields the sample
 * does not show (`is_cancelled`, JRNI's `triggerName` / `triggerTime`) are optional.
 */

/** A link in the HAL `_links` map. */
export interface BookingBugLink {
  href: string;
  templated?: boolean;
}

/** `_embedded.client` / `_embedded.member`: the customer. `"null"` strings mean absent. */
export interface BookingBugClient {
  id?: number;
  name?: string;
  first_name?: string;
  last_name?: string;
  email?: string;
  mobile?: string;
  mobile_prefix?: string;
  phone?: string;
  phone_prefix?: string;
  reference?: string;
  comp_ref?: string;
  company_id?: number;
  [key: string]: unknown;
}

/** `booking.address`: the place. */
export interface BookingBugAddress {
  id?: number;
  name?: string;
  address1?: string;
  address2?: string;
  address3?: string;
  address4?: string;
  address5?: string;
  postcode?: string;
  country?: string;
  [key: string]: unknown;
}

/** One booking of the purchase (`_embedded.bookings[]`). */
export interface BookingBugBooking {
  id: number;
  datetime?: string;
  end_datetime?: string;
  duration?: number;
  person_name?: string;
  resource_name?: string;
  service_id?: number;
  service_name?: string;
  company_id?: number;
  time_zone?: string;
  address?: BookingBugAddress;
  attended?: boolean;
  /** *Unverified* in the legacy push. */
  is_cancelled?: boolean;
  price?: number;
  quantity?: number;
  slot_id?: number;
  first_name?: string;
  last_name?: string;
  email?: string;
  on_waitlist?: boolean;
  _links?: Record<string, BookingBugLink>;
  [key: string]: unknown;
}

/** The push body: a purchase, with JRNI's trigger fields when the newer webhooks send it. */
export interface BookingBugPurchase {
  id: number;
  long_id?: string;
  created_at?: string;
  client_name?: string;
  total_price?: number;
  /** JRNI: `create | modify | cancelled`. */
  triggerName?: string;
  /** JRNI: when the trigger fired. */
  triggerTime?: string;
  _embedded?: {
    client?: BookingBugClient;
    member?: BookingBugClient;
    bookings?: BookingBugBooking[];
    [key: string]: unknown;
  };
  _links?: Record<string, BookingBugLink>;
  [key: string]: unknown;
}
