/**
 * Docplanner commands: the integration API v3 write calls (FACTS.md, "Write API"), with the same
 * OAuth2 client-credentials token as pull (cached in the instance state, renewed on a 401).
 *
 * | command | call |
 * |---|---|
 * | appointment.book | `POST …/slots/{start}/book` |
 * | appointment.cancel | `DELETE …/bookings/{id}` |
 * | appointment.reschedule | `POST …/bookings/{id}/move` (a new booking id, aliased to the same appointment) |
 * | appointment.mark_arrived | `POST …/bookings/{id}/presence/patient` |
 * | appointment.clear_presence | `DELETE …/bookings/{id}/presence/patient` |
 *
 * `…` is `/api/v3/integration/facilities/{facility}/doctors/{doctor}/addresses/{address}`: for an
 * existing booking the hub's last known state of the appointment gives the three ids. Docplanner's
 * API has no idempotency key, so a repeated call (the hub runs commands at least once) checks first:
 * a cancel whose DELETE is refused re-reads the booking and is done when it is already canceled; a
 * move or booking whose earlier try got no answer is not repeated blind (see docs/connectors/docplanner.md).
 */
import {
  type CommandContext,
  type CommandRequest,
  type CommandResult,
  type CommandSpec,
  isJsonObject,
  type JsonObject,
  type JsonValue,
  type PullContext,
  type VendorResponse,
} from '@switchyard/core';
import type { Config } from './config.ts';
import { apiBase, docplannerApi, retryAfterMs } from './pull.ts';

type Ctx = CommandContext<Config>;

/** The booking's place at Docplanner, from the command or the appointment's last known state. */
interface Place {
  facility: string;
  doctor: string;
  address: string;
}

function idOf(value: JsonValue | undefined): string | undefined {
  return isJsonObject(value) && typeof value.id === 'string' && value.id !== '' ? value.id : undefined;
}

function placeOf(source: JsonObject | undefined): Place | undefined {
  const facility = idOf(source?.organization);
  const doctor = idOf(source?.practitioner);
  const address = idOf(source?.location);
  return facility && doctor && address ? { facility, doctor, address } : undefined;
}

function placePath(config: Config, p: Place): string {
  const e = encodeURIComponent;
  return `${apiBase(config)}/api/v3/integration/facilities/${e(p.facility)}/doctors/${e(p.doctor)}/addresses/${e(p.address)}`;
}

function api(ctx: Ctx): PullContext<Config> {
  return {
    instanceId: ctx.instanceId,
    config: ctx.config,
    http: ctx.http,
    state: ctx.state,
    logger: ctx.logger,
  };
}

/** 5xx, 408 and 429 are worth another try (Retry-After honoured); other 4xx are Docplanner's refusal. */
function failure(what: string, res: VendorResponse): CommandResult {
  const vendor = { status: res.status, body: res.body };
  if (res.status >= 500 || res.status === 429 || res.status === 408) {
    const after = retryAfterMs(res.headers);
    return {
      outcome: 'transient',
      message: `Docplanner ${what} answered ${res.status}`,
      vendor,
      ...(after === undefined ? {} : { retryAfterMs: after }),
    };
  }
  const said = isJsonObject(res.body) && typeof res.body.message === 'string' ? `: ${res.body.message}` : '';
  return { outcome: 'permanent', message: `Docplanner ${what} answered ${res.status}${said}`, vendor };
}

const ok = (res: VendorResponse) => res.status >= 200 && res.status < 300;

/** The booking the command is about: its current vendor id and place, or why it cannot be addressed. */
function target(ctx: Ctx): { booking: string; place: Place } | CommandResult {
  const booking = ctx.vendorIds[ctx.vendorIds.length - 1];
  const place = placeOf(ctx.current);
  if (!booking || !place) {
    return {
      outcome: 'permanent',
      message:
        'the hub does not know this booking’s facility, doctor and address (no Docplanner notification about it carried them)',
    };
  }
  return { booking, place };
}

async function readBooking(ctx: Ctx, place: Place, booking: string): Promise<VendorResponse> {
  return docplannerApi(api(ctx), {
    method: 'GET',
    url: `${placePath(ctx.config, place)}/bookings/${encodeURIComponent(booking)}`,
  });
}

/** State-store key of a booking or move attempt: whether a call went out without an answer. */
const attemptKey = (command: CommandRequest) => `docplanner:command:${command.id}`;

/**
 * Before repeating a call Docplanner cannot deduplicate: refuse when an earlier try went out and no
 * answer came back (it may have taken effect), else note that this one is going out.
 */
async function guardUnanswered(
  command: CommandRequest,
  ctx: Ctx,
  what: string,
): Promise<CommandResult | undefined> {
  const earlier = await ctx.state.get<JsonValue>(attemptKey(command));
  if (ctx.attempt > 1 && earlier === 'sent') {
    return {
      outcome: 'permanent',
      message: `an earlier try of this ${what} got no answer and Docplanner has no idempotency key: not repeated, so nothing is done twice; the vendor's notification will show whether it happened`,
    };
  }
  await ctx.state.set(attemptKey(command), 'sent');
  return undefined;
}

async function answered(command: CommandRequest, ctx: Ctx): Promise<void> {
  await ctx.state.delete(attemptKey(command));
}

const DP_GENDER: Record<string, string> = { male: 'm', female: 'f' };

async function book(command: CommandRequest<'appointment.book'>, ctx: Ctx): Promise<CommandResult> {
  const d = command.data;
  const place = placeOf(d as unknown as JsonObject);
  if (!place || !d.service?.id) {
    return {
      outcome: 'permanent',
      message:
        'Docplanner needs organization.id (facility), practitioner.id (doctor), location.id (address) and service.id (address service) to book',
    };
  }
  const guard = await guardUnanswered(command, ctx, 'booking');
  if (guard) return guard;
  const p = d.patient;
  const patient: JsonObject = {};
  const name = p.given ?? p.name;
  if (name !== undefined) patient.name = name;
  if (p.family !== undefined) patient.surname = p.family;
  if (p.email !== undefined) patient.email = p.email;
  if (p.phone !== undefined) patient.phone = p.phone;
  if (p.birthDate !== undefined) patient.birth_date = p.birthDate;
  if (p.nationalId !== undefined) patient.nin = p.nationalId;
  if (p.gender !== undefined && DP_GENDER[p.gender]) patient.gender = DP_GENDER[p.gender]!;
  const body: JsonObject = {
    address_service_id: d.service.id,
    is_returning: p.isReturning ?? false,
    patient,
  };
  if (d.durationMinutes !== undefined) body.duration = d.durationMinutes;
  if (d.comment !== undefined) body.comment = d.comment;
  const vendor = isJsonObject(d.vendor as JsonValue) ? (d.vendor as JsonObject) : {};
  for (const key of ['insurance_provider_id', 'insurance_plan_id'] as const) {
    if (typeof vendor[key] === 'string' || typeof vendor[key] === 'number') body[key] = vendor[key]!;
  }
  const res = await docplannerApi(api(ctx), {
    method: 'POST',
    url: `${placePath(ctx.config, place)}/slots/${encodeURIComponent(d.start)}/book`,
    json: body,
  });
  await answered(command, ctx);
  if (!ok(res)) return failure('book', res);
  const id = isJsonObject(res.body) ? res.body.id : undefined;
  if (typeof id !== 'string' && typeof id !== 'number') {
    return {
      outcome: 'permanent',
      message: 'Docplanner booked but answered without a booking id',
      vendor: { status: res.status, body: res.body },
    };
  }
  return { outcome: 'done', vendorIds: [String(id)], vendor: { status: res.status, body: res.body } };
}

async function cancel(command: CommandRequest<'appointment.cancel'>, ctx: Ctx): Promise<CommandResult> {
  const t = target(ctx);
  if ('outcome' in t) return t;
  const res = await docplannerApi(api(ctx), {
    method: 'DELETE',
    url: `${placePath(ctx.config, t.place)}/bookings/${encodeURIComponent(t.booking)}`,
    ...(command.data.reason !== undefined ? { json: { reason: command.data.reason } } : {}),
  });
  if (ok(res)) return { outcome: 'done', vendor: { status: res.status, body: res.body } };
  const result = failure('cancel', res);
  if (result.outcome === 'permanent') {
    // A repeated cancel (after a crash, or the patient cancelled meanwhile): done if it is canceled.
    const now = await readBooking(ctx, t.place, t.booking);
    if (ok(now) && isJsonObject(now.body) && now.body.status === 'canceled') {
      return { outcome: 'done', alreadyDone: true, vendor: { status: res.status, body: res.body } };
    }
  }
  return result;
}

async function reschedule(
  command: CommandRequest<'appointment.reschedule'>,
  ctx: Ctx,
): Promise<CommandResult> {
  const t = target(ctx);
  if ('outcome' in t) return t;
  const d = command.data;
  const service = d.service?.id ?? idOf(ctx.current?.service);
  if (!service) {
    return {
      outcome: 'permanent',
      message: 'Docplanner needs the address service of the move (data.service.id)',
    };
  }
  const guard = await guardUnanswered(command, ctx, 'move');
  if (guard) return guard;
  const body: JsonObject = { start: d.start, address_service_id: service };
  if (d.location?.id !== undefined) body.address_id = d.location.id;
  if (d.durationMinutes !== undefined) body.duration = d.durationMinutes;
  const res = await docplannerApi(api(ctx), {
    method: 'POST',
    url: `${placePath(ctx.config, t.place)}/bookings/${encodeURIComponent(t.booking)}/move`,
    json: body,
  });
  await answered(command, ctx);
  if (!ok(res)) return failure('move', res);
  const id = isJsonObject(res.body) ? res.body.id : undefined;
  if (typeof id !== 'string' && typeof id !== 'number') {
    return {
      outcome: 'permanent',
      message: 'Docplanner moved the booking but answered without its new id',
      vendor: { status: res.status, body: res.body },
    };
  }
  return { outcome: 'done', vendorIds: [String(id)], vendor: { status: res.status, body: res.body } };
}

function presence(method: 'POST' | 'DELETE') {
  return async (_command: CommandRequest, ctx: Ctx): Promise<CommandResult> => {
    const t = target(ctx);
    if ('outcome' in t) return t;
    const res = await docplannerApi(api(ctx), {
      method,
      url: `${placePath(ctx.config, t.place)}/bookings/${encodeURIComponent(t.booking)}/presence/patient`,
    });
    // Marking twice, or clearing what is not marked, leaves the same state: both are idempotent.
    if (ok(res)) return { outcome: 'done', vendor: { status: res.status, body: res.body } };
    return failure(method === 'POST' ? 'presence' : 'presence removal', res);
  };
}

/** The Docplanner command handlers. `appointment.mark_no_show`: the write API only marks presence (docs). */
export const commands: CommandSpec<Config> = {
  'appointment.book': book,
  'appointment.cancel': cancel,
  'appointment.reschedule': reschedule,
  'appointment.mark_arrived': presence('POST'),
  'appointment.clear_presence': presence('DELETE'),
};
