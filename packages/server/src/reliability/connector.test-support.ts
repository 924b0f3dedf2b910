/**
 * The connector the reliability tests push through: small and predictable, so a test can count
 * exactly what went in and what must come out. Test-only; not exported from the package.
 *
 * Body `{ id, subject, type? }`: `id` is the dedupe key, `subject` the vendor booking (ordering key
 * and appointment), `type` `created` (default) or `updated`. A body with `poison: true` makes
 * `normalize` throw a plain `TypeError` (a connector bug, not a classified error) while
 * {@link connectorBugs}`.poisonThrows` is set; clearing it is "shipping the fix". A body with
 * `slow: true` waits in `normalize` while {@link slowNormalize}`.until` is set. A body with
 * `unencodable: true` makes the Postgres driver fail while it writes the inbound statement (see
 * {@link unencodable}).
 */
import {
  ConnectorError,
  defineConnector,
  emit,
  isJsonObject,
  type JsonObject,
  parseJsonBody,
  timingSafeEqualString,
} from '@switchyard/core';

/**
 * A value the Postgres driver cannot encode: it throws while the driver writes the statement (after
 * it sent the Parse), exactly where a batch whose parameters passed the largest JS string once
 * failed with `RangeError: Invalid string length`.
 */
const unencodable = {
  toPostgres(): never {
    throw new RangeError('Invalid string length');
  },
} as unknown as string;

/** Mutable switches the tests flip (in the process that runs `normalize`). */
export const connectorBugs = { poisonThrows: true };

/**
 * While `until` is set, `normalize` of a body with `slow: true` waits for it before touching the
 * hub's stores: a normalization in progress that the test lets go when it chooses (during a
 * database outage, or after several lease lengths).
 */
export const slowNormalize: { until: Promise<void> | undefined } = { until: undefined };

interface RelConfig {
  apiKey: string;
}

export const relConnector = defineConnector<RelConfig>({
  name: 'reltest',
  version: '1.0.0',
  displayName: 'Reliability test',
  configSchema: {
    type: 'object',
    required: ['apiKey'],
    properties: { apiKey: { type: 'string', 'x-secret': true } },
  },
  eventMap: [],
  push: {
    routes: [
      { name: 'default', path: '' },
      { name: 'keyed', path: 'k/:key' },
    ],
    authenticate(req, config) {
      const presented = req.route === 'keyed' ? req.params.key : req.headers['x-api-key'];
      if (!timingSafeEqualString(presented, config.apiKey)) throw ConnectorError.auth('wrong or missing key');
    },
    credentials: () => ({ headers: ['x-api-key'], params: ['key'] }),
    parse(req) {
      const body = parseJsonBody(req);
      if (!isJsonObject(body) || typeof body.id !== 'string' || typeof body.subject !== 'string') {
        throw ConnectorError.badRequest('expected { id, subject }');
      }
      const type = body.type === 'updated' ? 'updated' : 'created';
      if (body.unencodable === true) {
        return [
          { type, dedupeKey: body.id, orderingKey: body.subject, occurredAt: unencodable, payload: body },
        ];
      }
      return [{ type, dedupeKey: body.id, orderingKey: body.subject, payload: body }];
    },
    acknowledge: (notifications) => ({ status: 202, body: { received: notifications.length } }),
  },
  async normalize(n, ctx) {
    const p = n.payload as JsonObject;
    if (p.poison === true && connectorBugs.poisonThrows) {
      // A bug, not a classified ConnectorError: what an unguarded property access looks like.
      throw new TypeError(`Cannot read properties of undefined (reading 'start') in ${String(p.id)}`);
    }
    if (p.slow === true && slowNormalize.until) await slowNormalize.until;
    const vendorId = String(p.subject);
    const id = await ctx.aliases.hubId('appointment', vendorId);
    return emit({
      type: `appointment.${n.type}`,
      subject: `appointment/${id}`,
      time: '2026-01-05T10:00:00+01:00',
      data: {
        id,
        vendorIds: [{ system: 'reltest', instance: ctx.instanceId, value: vendorId }],
        status: 'booked',
        ...(n.type === 'updated' ? { changes: ['comment'] } : {}),
      },
    });
  },
  encode() {
    return { route: 'default', body: {} };
  },
});
