/**
 * A small, well-behaved connector for testing the conformance suite itself. "Acme Booking" pushes
 * `{ event, id, occurred_at, booking: { id, start, end } }` with an `x-api-key` header; a cancellation
 * of a booking it has seen keeps that booking's identity (state), `booking.noted` maps to nothing,
 * and `ping` is a connectivity check.
 */
import {
  type ConnectorDefinition,
  ConnectorError,
  defineConnector,
  type EventDraft,
  emit,
  ignore,
  isJsonObject,
  type JsonObject,
  parseJsonObjectBody,
  timingSafeEqualString,
} from '@switchyard/core';

export interface AcmeConfig {
  apiKey: string;
}

export const ACME_API_KEY = 'acme-test-key-0123456789abcdef';

function stringField(obj: JsonObject, name: string): string {
  const value = obj[name];
  if (typeof value !== 'string' || value === '')
    throw ConnectorError.badRequest(`${name} must be a non-empty string`);
  return value;
}

export const acmeDefinition: ConnectorDefinition<AcmeConfig> = {
  name: 'acme',
  version: '1.0.0',
  displayName: 'Acme Booking',
  configSchema: {
    type: 'object',
    required: ['apiKey'],
    properties: { apiKey: { type: 'string', 'x-secret': true } },
  },
  eventMap: [
    { vendorType: 'booking.created', normalizedTypes: ['appointment.created'] },
    { vendorType: 'booking.cancelled', normalizedTypes: ['appointment.cancelled'] },
    { vendorType: 'booking.noted', normalizedTypes: [], note: 'notes are not part of the model' },
  ],
  push: {
    routes: [{ name: 'default', path: '' }],
    authenticate(request, config) {
      if (!timingSafeEqualString(request.headers['x-api-key'], config.apiKey)) {
        throw ConnectorError.auth('x-api-key does not match');
      }
    },
    credentials: () => ({ headers: ['x-api-key'] }),
    sign: (_request, config) => ({ headers: { 'x-api-key': config.apiKey } }),
    parse(request) {
      const body = parseJsonObjectBody(request);
      const event = stringField(body, 'event');
      if (event === 'ping') return [];
      const booking = body.booking;
      if (!isJsonObject(booking)) throw ConnectorError.badRequest('booking must be an object');
      return [
        {
          type: event,
          dedupeKey: stringField(body, 'id'),
          orderingKey: stringField(booking, 'id'),
          occurredAt: stringField(body, 'occurred_at'),
          payload: body,
        },
      ];
    },
  },
  async normalize(notification, ctx) {
    const body = notification.payload as JsonObject;
    const booking = body.booking as JsonObject;
    const bookingId = booking.id as string;
    const status =
      notification.type === 'booking.created'
        ? 'booked'
        : notification.type === 'booking.cancelled'
          ? 'cancelled'
          : undefined;
    if (status === undefined) return ignore(`Acme ${notification.type} has no normalized counterpart`);
    const id = await ctx.aliases.hubId('appointment', bookingId);
    await ctx.state.set(`booking:${bookingId}`, status);
    const draft: EventDraft = {
      type: status === 'booked' ? 'appointment.created' : 'appointment.cancelled',
      subject: `appointment/${id}`,
      time: notification.occurredAt ?? ctx.receivedAt.toISOString(),
      data: {
        id,
        vendorIds: [{ system: 'acme', instance: ctx.instanceId, value: bookingId, current: true }],
        status,
        start: booking.start as string,
        end: booking.end as string,
      },
    };
    return emit(draft);
  },
  encode(event) {
    const data = event.data as JsonObject;
    const vendorIds = data.vendorIds as JsonObject[];
    return {
      route: 'default',
      body: {
        event: event.type === 'appointment.created' ? 'booking.created' : 'booking.cancelled',
        id: `rt-${event.id}`,
        occurred_at: event.time,
        booking: { id: vendorIds[0]?.value ?? '', start: data.start ?? null, end: data.end ?? null },
      },
    };
  },
};

export const acme = defineConnector(acmeDefinition);
