/**
 * Acuity's appointment record → the normalized appointment, and its read from the API (shared by
 * normalize and commands).
 */
import {
  isJsonObject,
  type JsonObject,
  toRfc3339,
  trimmedText,
  type VendorHttp,
  type VendorResponse,
  writeOffset,
  zoneOffsetMinutes,
} from '@switchyard/core';
import { apiBase, apiHeaders, type Config } from './config.ts';
import type { AcuityAppointment } from './vendor.ts';

export const CONNECTOR_NAME = 'acuity';

/**
 * `2013-07-02T10:15:00-0700` → `2013-07-02T10:15:00-07:00` (RFC 3339, core's one reading); undefined
 * when unreadable, an impossible day (`2026-02-30`) or without an offset (Acuity always writes one).
 */
export function rfc3339(datetime: unknown): string | undefined {
  if (typeof datetime !== 'string' || !/(?:Z|[+-]\d{2}:?\d{2})$/i.test(datetime.trim())) return undefined;
  return toRfc3339(datetime);
}

/**
 * `start` plus `minutes`, written with the offset `timeZone` has at that instant (the end of a
 * visit across a DST change is not at the start's offset), else with the start's own offset. The
 * zone is taken only when the start is at its offset: Acuity's own example pairs `-0700` with
 * `America/New_York`, so the zone may not be the one the times are written in.
 */
export function endOf(start: string, minutes: number, timeZone?: string): string {
  const at = Date.parse(start) + minutes * 60_000;
  const zoneAtStart = timeZone === undefined ? undefined : zoneOffsetMinutes(Date.parse(start), timeZone);
  const zoned =
    timeZone !== undefined && zoneAtStart !== undefined && writeOffset(zoneAtStart) === start.slice(19)
      ? zoneOffsetMinutes(at, timeZone)
      : undefined;
  const offset = zoned === undefined ? start.slice(19) : writeOffset(zoned);
  const sign = offset === 'Z' ? 0 : offset.startsWith('-') ? -1 : 1;
  const offsetMin = zoned ?? sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const local = new Date(at + offsetMin * 60_000).toISOString().slice(0, 19);
  return `${local}${offset}`;
}

/** The normalized appointment's fields from Acuity's record (the hub id and vendor ids added by the caller). */
export function appointmentFields(record: AcuityAppointment): JsonObject {
  const data: JsonObject = { status: record.canceled === true ? 'cancelled' : 'booked' };
  const start = rfc3339(record.datetime);
  const minutes = Number(record.duration);
  if (start !== undefined) {
    data.start = start;
    if (Number.isInteger(minutes) && minutes > 0) {
      data.durationMinutes = minutes;
      data.end = endOf(start, minutes, trimmedText(record.timezone));
    }
  }
  if (typeof record.timezone === 'string' && record.timezone !== '') data.timeZone = record.timezone;
  const patient: JsonObject = {};
  const given = trimmedText(record.firstName);
  const family = trimmedText(record.lastName);
  const name = [given, family].filter(Boolean).join(' ');
  if (name) patient.name = name;
  if (given) patient.given = given;
  if (family) patient.family = family;
  if (trimmedText(record.phone)) patient.phone = trimmedText(record.phone)!;
  if (trimmedText(record.email)) patient.email = trimmedText(record.email)!;
  if (Object.keys(patient).length > 0) data.patient = patient;
  if (record.calendarID !== undefined && record.calendarID !== null) {
    data.practitioner = {
      id: String(record.calendarID),
      ...(trimmedText(record.calendar) ? { name: trimmedText(record.calendar)! } : {}),
    };
  }
  if (record.appointmentTypeID !== undefined && record.appointmentTypeID !== null) {
    data.service = {
      id: String(record.appointmentTypeID),
      ...(trimmedText(record.type) ? { name: trimmedText(record.type)! } : {}),
    };
  }
  if (trimmedText(record.notes)) data.comment = trimmedText(record.notes)!;
  return data;
}

/** The read's verdict: the record, none (404), or the answer that was neither. */
export type Read =
  | { found: AcuityAppointment; res: VendorResponse }
  | { found: undefined; res: VendorResponse };

/**
 * `GET /appointments/:id`. A network failure is thrown as the client throws it (transient).
 *
 * @example
 * ```ts
 * const { found } = await readAppointment(ctx.http, ctx.config, '54321');
 * ```
 */
export async function readAppointment(http: VendorHttp, config: Config, id: string): Promise<Read> {
  const res = await http.request({
    url: `${apiBase(config)}/appointments/${encodeURIComponent(id)}`,
    headers: apiHeaders(config),
  });
  const found =
    res.status === 200 && isJsonObject(res.body) && res.body.id !== undefined
      ? (res.body as unknown as AcuityAppointment)
      : undefined;
  return { found, res };
}
