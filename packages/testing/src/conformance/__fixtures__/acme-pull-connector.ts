/**
 * A small, well-behaved pull-only connector for testing the conformance suite itself. "Acme Pull"
 * has no webhooks: `GET {apiBaseUrl}/bookings?updated_since=<cursor>` answers a page
 * `{ bookings: [{ id, status, start, end, updated_at }], next_cursor, more }`. Each booking
 * version is one notification (`booking.<status>`, dedupe key `<id>@<updated_at>`); normalization
 * is the push Acme's.
 */
import {
  type ConnectorDefinition,
  ConnectorError,
  defineConnector,
  isJsonObject,
  type JsonObject,
  type PullSpec,
  parseRetryAfter,
  type VendorNotification,
} from '@switchyard/core';
import { acmeDefinition } from './acme-connector.ts';

export interface AcmePullConfig {
  apiKey: string;
  apiBaseUrl: string;
}

/** One listed booking as a notification; throws a permanent error for an item it cannot read. */
export function bookingNotification(item: JsonObject): VendorNotification {
  const { id, status, updated_at: updatedAt } = item;
  if (typeof id !== 'string' || typeof status !== 'string' || typeof updatedAt !== 'string') {
    throw ConnectorError.permanent('a listed booking lacks id, status or updated_at');
  }
  return {
    type: `booking.${status}`,
    dedupeKey: `${id}@${updatedAt}`,
    orderingKey: id,
    occurredAt: updatedAt,
    payload: { booking: { id, start: item.start ?? null, end: item.end ?? null } },
  };
}

export const acmePullSpec: PullSpec<AcmePullConfig> = {
  defaultIntervalMs: 60_000,
  async fetch(ctx, cursor) {
    const url = `${ctx.config.apiBaseUrl}/bookings${cursor ? `?updated_since=${encodeURIComponent(cursor)}` : ''}`;
    const res = await ctx.http.request({ url, headers: { 'x-api-key': ctx.config.apiKey } });
    if (res.status >= 500 || res.status === 429) {
      throw ConnectorError.transient(`Acme answered ${res.status}`, {
        retryAfterMs: parseRetryAfter(res.headers['retry-after']),
      });
    }
    if (res.status >= 300) throw ConnectorError.permanent(`Acme answered ${res.status}`);
    const page = res.body;
    if (!isJsonObject(page) || !Array.isArray(page.bookings)) {
      throw ConnectorError.transient('Acme answered something that is not a page of bookings');
    }
    const notifications = page.bookings.map((item) => {
      if (!isJsonObject(item)) throw ConnectorError.transient('a listed booking is not an object');
      return bookingNotification(item);
    });
    const next = typeof page.next_cursor === 'string' ? page.next_cursor : cursor;
    return { notifications, cursor: next, more: page.more === true };
  },
};

// No push, so no encode: a pull-only connector has nothing to encode to.
const { push: _push, encode: _encode, ...shared } = acmeDefinition;

export const acmePullDefinition: ConnectorDefinition<AcmePullConfig> = {
  ...(shared as ConnectorDefinition<AcmePullConfig>),
  name: 'acme-pull',
  displayName: 'Acme Pull',
  configSchema: {
    type: 'object',
    required: ['apiKey', 'apiBaseUrl'],
    properties: { apiKey: { type: 'string', 'x-secret': true }, apiBaseUrl: { type: 'string' } },
  },
  pull: acmePullSpec,
};

export const acmePull = defineConnector(acmePullDefinition);
