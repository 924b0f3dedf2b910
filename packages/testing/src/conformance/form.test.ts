/**
 * The conformance suite on a vendor whose pushes are forms, not JSON (Acuity Scheduling style:
 * `application/x-www-form-urlencoded`, `action=scheduled&id=…`, signed with a base64 HMAC-SHA256 of
 * the raw body): `.form` fixtures are sent byte for byte with the form type, and round trips send
 * what `encode` returns as a form when it declares that type.
 */
import {
  ConnectorError,
  defineConnector,
  emit,
  type InboundRequest,
  signBody,
  verifyBodySignature,
} from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { checkConformance } from './check.ts';

interface FormConfig {
  secret: string;
}
const SECRET = 'form-vendor-secret-0123456789abcdef';
const HEADER = 'x-acme-signature';
const ACTIONS: Record<string, 'appointment.created' | 'appointment.cancelled'> = {
  scheduled: 'appointment.created',
  canceled: 'appointment.cancelled',
};

/** The form's fields; a body that is not a form of an action and an id is refused (a 400). */
function fields(request: InboundRequest): Record<string, string> {
  const type = request.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded'))
    throw ConnectorError.badRequest(`not a form: ${type}`);
  const form = Object.fromEntries(new URLSearchParams(request.rawBody.toString('utf8')));
  if (!form.action || !/^\d+$/.test(form.id ?? ''))
    throw ConnectorError.badRequest('action and id are required');
  return form;
}

const formConnector = defineConnector<FormConfig>({
  name: 'acme-form',
  version: '1.0.0',
  displayName: 'Acme Forms',
  configSchema: { type: 'object', properties: { secret: { type: 'string', 'x-secret': true } } },
  eventMap: [
    { vendorType: 'scheduled', normalizedTypes: ['appointment.created'] },
    { vendorType: 'canceled', normalizedTypes: ['appointment.cancelled'] },
  ],
  push: {
    routes: [{ name: 'default', path: '' }],
    authenticate(request) {
      if (!request.headers[HEADER]) throw ConnectorError.auth(`${HEADER} is missing`);
    },
    verifyBody(request, config) {
      const verdict = verifyBodySignature({
        header: request.headers[HEADER],
        body: request.rawBody,
        secrets: [config.secret],
        encoding: 'base64',
      });
      if (!verdict.ok) throw ConnectorError.auth(verdict.message);
    },
    credentials: () => ({ headers: [HEADER] }),
    parse(request) {
      const form = fields(request);
      // Body-only signature, no event id: the action and the appointment id are the delivery.
      return [
        { type: form.action!, dedupeKey: `${form.action}:${form.id}`, orderingKey: form.id!, payload: form },
      ];
    },
  },
  async normalize(notification, ctx) {
    const form = notification.payload as Record<string, string>;
    const id = await ctx.aliases.hubId('appointment', form.id!);
    const type = ACTIONS[notification.type];
    if (type === undefined) throw ConnectorError.permanent(`unknown action ${notification.type}`);
    return emit({
      type,
      subject: `appointment/${id}`,
      time: ctx.receivedAt.toISOString(),
      data: {
        id,
        vendorIds: [{ system: 'acme-form', instance: ctx.instanceId, value: form.id!, current: true }],
        status: type === 'appointment.created' ? 'booked' : 'cancelled',
        vendor: form,
      },
    });
  },
  encode(event) {
    const data = event.data as { vendor: Record<string, string> };
    const action = event.type === 'appointment.created' ? 'scheduled' : 'canceled';
    return {
      route: 'default',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: { ...data.vendor, action },
    };
  },
});

const options = {
  connector: formConnector,
  config: { secret: SECRET },
  fixturesDir: new URL('./__fixtures__/acme-form/', import.meta.url),
  credentials: {
    good: { secret: SECRET },
    wrong: { 'another secret': { secret: 'form-vendor-secret-wrong-000000000' } },
    missing: {},
  },
  sign: (request: InboundRequest, credential: { secret: string }) => ({
    headers: { [HEADER]: signBody(credential.secret, request.rawBody, { encoding: 'base64' }) },
  }),
  fixtures: [
    { file: 'appointment-scheduled.form', expect: ['appointment.created'] },
    { file: 'appointment-canceled.form', expect: ['appointment.cancelled'] },
  ],
};

describe('checkConformance on a form-encoded vendor', () => {
  it('reads .form fixtures, sends them as forms, and round-trips what encode returns as a form', async () => {
    const report = await checkConformance(options);
    expect(report.failures).toEqual([]);
    const passed = (check: string) => report.results.filter((r) => r.check === check && r.ok).length;
    expect(passed('fixtures')).toBe(2);
    expect(passed('normalize')).toBeGreaterThanOrEqual(2);
    expect(passed('round-trip')).toBe(2);
    expect(passed('auth-near-miss')).toBeGreaterThan(0);
  });

  it('still fails a form connector whose verifier ignores the body', async () => {
    const lax = defineConnector<FormConfig>({
      ...formConnector,
      push: { ...formConnector.push!, verifyBody: () => undefined },
    });
    const report = await checkConformance({ ...options, connector: lax });
    expect(report.failures.map((f) => f.check)).toContain('auth');
  });
});
