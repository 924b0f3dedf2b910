/**
 * Docplanner push bodies for the benchmarks: the real `slot-booked` fixture made unique per
 * request (booking id, created_at), so the hub's dedupe does not swallow any of them.
 */
import fixture from '../../packages/connectors/docplanner/fixtures/slot-booked.json' with { type: 'json' };

export const INSTANCE_ID = 'dp-bench';
export const API_KEY = 'bench-push-key-0123456789';
export const SECRET_KEY = 'bench-secret-key-0123456789abcdef';

/**
 * Facilities the pushes are spread over. Docplanner notifications are normalized in order per
 * facility (a move changes the booking id), so a single facility would serialize normalization
 * onto one worker; a hub serving a chain sees many. 64 keeps every normalize worker busy.
 */
export const FACILITIES = 64;

/** The settings of the benchmark's Docplanner instance (push with a static API key). */
export const instanceSettings = { pushAuth: { apiKey: API_KEY } };

const template = JSON.stringify(fixture);
const base = Date.parse('2026-03-02T09:14:07+01:00');

/**
 * The body of push number `seq`. The comment carries `bench:<seq>` so a subscriber can tell which
 * push an event came from (the latency scenario matches send and receive times by it).
 *
 * @example
 * ```ts
 * const body = pushBody(42); // slot-booked, visit_booking.id '900000042'
 * ```
 */
export function pushBody(seq: number, runTag = 0): string {
  const body = JSON.parse(template) as {
    data: { facility: { id: string }; visit_booking: { id: string; comment: string } };
    created_at: string;
  };
  body.data.facility.id = String(10_000 + (seq % FACILITIES));
  body.data.visit_booking.id = String(runTag * 100_000_000 + 900_000_000 + seq);
  body.data.visit_booking.comment = `bench:${seq}`;
  body.created_at = new Date(base + seq * 1000).toISOString().replace('Z', '+00:00');
  return JSON.stringify(body);
}

/** Headers of a push (the API key Docplanner sends). */
export const pushHeaders = { 'content-type': 'application/json', 'x-api-key': API_KEY };

/** Extracts the push number from a delivered event body (-1 when absent). */
export function seqOf(body: string): number {
  const m = /"bench:(\d+)"/.exec(body);
  return m ? Number(m[1]) : -1;
}
