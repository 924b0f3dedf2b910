import {
  type CommandSpec,
  type ConnectorDefinition,
  ConnectorError,
  commandOutcome,
  createdOutcome,
  defineConnector,
} from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { ACME_API_KEY, type AcmeConfig, acmeDefinition } from './__fixtures__/acme-connector.ts';
import { checkCommandConformance, describeCommandConformance } from './commands.ts';

/** Acme's cancel and reschedule, by the rule: what the vendor answered, through commandOutcome. */
const goodCommands: CommandSpec<AcmeConfig> = {
  async 'appointment.cancel'(_command, ctx) {
    const res = await ctx.http.request({
      method: 'DELETE',
      url: `https://acme.test/bookings/${ctx.vendorIds.at(-1)}`,
    });
    return commandOutcome('Acme cancel', res);
  },
  async 'appointment.reschedule'(command, ctx) {
    const res = await ctx.http.request({
      method: 'PUT',
      url: `https://acme.test/bookings/${ctx.vendorIds.at(-1)}`,
      json: { start: command.data.start },
    });
    return commandOutcome('Acme reschedule', res);
  },
};

const withCommands = (
  commands: CommandSpec<AcmeConfig>,
  more: Partial<ConnectorDefinition<AcmeConfig>> = {},
) => defineConnector({ ...acmeDefinition, commands, ...more });

const samples = {
  'appointment.cancel': { data: { reason: 'patient called' }, vendorIds: ['B-77'] },
  'appointment.reschedule': { data: { start: '2026-03-11T09:00:00+01:00' }, vendorIds: ['B-77'] },
};
const config = { apiKey: ACME_API_KEY };

async function failures(connector: ReturnType<typeof withCommands>, given: object = samples) {
  const results = await checkCommandConformance({ connector, config, samples: given });
  return results.filter((r) => !r.ok).map((r) => `${r.type}: ${r.message}`);
}

describeCommandConformance({ connector: withCommands(goodCommands), config, samples });

describe('checkCommandConformance', () => {
  it('fails a book taken as done on a 200 HTML page, and passes one that answers through createdOutcome', async () => {
    const book = {
      'appointment.book': { data: { start: '2026-03-11T09:00:00+01:00', patient: { name: 'Jan' } } },
    };
    const post = (ctx: Parameters<NonNullable<CommandSpec<AcmeConfig>['appointment.book']>>[1]) =>
      ctx.http.request({ method: 'POST', url: 'https://acme.test/bookings', json: {} });
    expect(
      await failures(
        withCommands({
          async 'appointment.book'(_command, ctx) {
            return commandOutcome('Acme book', await post(ctx));
          },
        }),
        book,
      ),
    ).toEqual([
      'appointment.book: the vendor answered 200 with an HTML page (a proxy or maintenance page): expected transient (createdOutcome: a booking answered without the JSON naming it is not done, nor refused), got done',
    ]);
    expect(
      await failures(
        withCommands({
          async 'appointment.book'(_command, ctx) {
            return createdOutcome('Acme book', await post(ctx), (body) => body.id);
          },
        }),
        book,
      ),
    ).toEqual([]);
  });

  it('passes handlers that answer by the rule', async () => {
    expect(await failures(withCommands(goodCommands))).toEqual([]);
  });

  it('fails a handler that takes a 503 for a refusal, one that drops the Retry-After, and one that crashes', async () => {
    const found = await failures(
      withCommands({
        async 'appointment.cancel'(_command, ctx) {
          const res = await ctx.http.request({ method: 'DELETE', url: 'https://acme.test/bookings/1' });
          if (res.status >= 300)
            return {
              outcome: 'permanent',
              message: `answered ${res.status}`,
              vendor: { status: res.status, body: res.body },
            };
          return { outcome: 'done' };
        },
        async 'appointment.reschedule'(_command, ctx) {
          const res = await ctx.http.request({ method: 'PUT', url: 'https://acme.test/bookings/1' });
          if (res.status === 429) return { outcome: 'transient', message: 'rate limited' };
          // A thrown ConnectorError counts as the hub counts it; a TypeError on a refusal does not.
          if (res.status === 503) throw ConnectorError.transient(`answered ${res.status}`);
          return (res.body as unknown as { id: { value: string } }).id.value as never;
        },
      }),
    );
    expect(found).toEqual([
      'appointment.cancel: the vendor answered 503: expected transient, got permanent',
      'appointment.cancel: the vendor answered 429 with Retry-After: 7: expected transient, got permanent',
      'appointment.reschedule: the vendor answered 429 with Retry-After: 7: expected retryAfterMs 7000 (parseRetryAfter), got undefined',
      "appointment.reschedule: the vendor answered 422: the handler threw TypeError: Cannot read properties of undefined (reading 'value') (the hub would retry it as transient, forever)",
    ]);
  });

  it('asks for one valid sample per handled type, and only for those', async () => {
    expect(
      await failures(withCommands(goodCommands), {
        'appointment.cancel': samples['appointment.cancel'],
        'appointment.book': { data: { start: 'tomorrow', patient: {} } },
      }),
    ).toEqual([
      'appointment.book: a sample is given for appointment.book, which the connector does not handle',
      'appointment.reschedule: no sample command: every handled type needs one',
    ]);
    const refusing = withCommands(goodCommands, {
      commandUnsupported: (command) =>
        command.type === 'appointment.reschedule' ? 'Acme cannot move' : undefined,
    });
    expect(await failures(refusing)).toEqual([
      'appointment.reschedule: the sample is refused by commandUnsupported: Acme cannot move',
    ]);
  });
});
