import {
  type CommandSpec,
  type ConnectorDefinition,
  ConnectorError,
  commandOutcome,
  createdOutcome,
  defineConnector,
  provesNotCarriedOut,
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

type BookContext = Parameters<NonNullable<CommandSpec<AcmeConfig>['appointment.book']>>[1];
const bookSample = {
  'appointment.book': { data: { start: '2026-03-11T09:00:00+01:00', patient: { name: 'Jan' } } },
};
const BLIND =
  "appointment.book: a second try after a gateway's 503: the next try sent POST https://acme.test/bookings again, blind";

describe('checkCommandConformance: a create whose answer proved nothing', () => {
  const send = (ctx: BookContext, headers: Record<string, string> = {}) =>
    ctx.http.request({ method: 'POST', url: 'https://acme.test/bookings', headers, json: {} });

  it('fails a book that posts again on the next try without looking (it books twice)', async () => {
    const found = await failures(
      withCommands({
        async 'appointment.book'(_command, ctx) {
          return createdOutcome('Acme book', await send(ctx), (body) => body.id);
        },
      }),
      bookSample,
    );
    expect(found).toHaveLength(1);
    expect(found[0]).toContain(BLIND);
  });

  it('passes a book that marks its POST and, on the next try, posts again only after a lookup finds nothing', async () => {
    const found = await failures(
      withCommands({
        async 'appointment.book'(_command, ctx) {
          if ((await ctx.commandState.get('sent')) !== undefined) {
            const look = await ctx.http.request({ url: 'https://acme.test/bookings?start=…' });
            if (look.status !== 200) return commandOutcome('Acme lookup', look);
          }
          await ctx.commandState.set('sent', true);
          const res = await send(ctx);
          const result = createdOutcome('Acme book', res, (body) => body.id);
          if (result.outcome === 'permanent' || provesNotCarriedOut(res))
            await ctx.commandState.delete('sent');
          return result;
        },
      }),
      bookSample,
    );
    expect(found).toEqual([]);
  });

  it('passes a repeat with the same Idempotency-Key, fails one with a new key each try', async () => {
    const keyed = (key: (command: { id: string }) => string) =>
      withCommands({
        async 'appointment.book'(command, ctx) {
          const res = await send(ctx, { 'Idempotency-Key': key(command) });
          return createdOutcome('Acme book', res, (body) => body.id);
        },
      });
    expect(
      await failures(
        keyed((command) => command.id),
        bookSample,
      ),
    ).toEqual([]);
    let n = 0;
    const fresh = await failures(
      keyed(() => `key-${++n}`),
      bookSample,
    );
    expect(fresh[0]).toContain(BLIND);
  });

  it('passes a repeat with the same key in the body when idempotencyKeyOf reads it there (Square), fails it without', async () => {
    const inBody = withCommands({
      async 'appointment.book'(command, ctx) {
        const res = await ctx.http.request({
          method: 'POST',
          url: 'https://acme.test/bookings',
          json: { idempotency_key: command.id },
        });
        return createdOutcome('Acme book', res, (body) => body.id);
      },
    });
    const bodyKey = (request: { json?: unknown }) =>
      (request.json as { idempotency_key?: string } | undefined)?.idempotency_key;
    const results = await checkCommandConformance({
      connector: inBody,
      config,
      samples: bookSample,
      idempotencyKeyOf: bodyKey,
    });
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect((await failures(inBody, bookSample))[0]).toContain(BLIND);
  });

  it("reaches the create behind a login with the connector's vendorApi, and ignores the repeated login", async () => {
    const loginFirst = withCommands({
      async 'appointment.book'(_command, ctx) {
        const login = await ctx.http.request({ method: 'POST', url: 'https://acme.test/login', json: {} });
        if (login.status !== 200) return commandOutcome('Acme login', login);
        return createdOutcome('Acme book', await send(ctx), (body) => body.id);
      },
    });
    const loggingIn = (request: { url: string }) =>
      request.url.endsWith('/login') ? { status: 200, headers: {}, body: { token: 't' } } : undefined;
    const results = await checkCommandConformance({
      connector: loginFirst,
      config,
      samples: bookSample,
      vendorApi: loggingIn,
    });
    const problems = results.filter((r) => !r.ok).map((r) => `${r.type}: ${r.message}`);
    // Reached: the create itself is judged (sent again blind), not the login.
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(BLIND);
  });
});

describe('checkCommandConformance', () => {
  it('fails a book taken as done on a 200 HTML page, and passes one that answers through createdOutcome', async () => {
    const book = {
      'appointment.book': { data: { start: '2026-03-11T09:00:00+01:00', patient: { name: 'Jan' } } },
    };
    // With the command id as Idempotency-Key: Acme deduplicates a repeated POST (the blind-repeat check).
    const post = (ctx: BookContext) =>
      ctx.http.request({
        method: 'POST',
        url: 'https://acme.test/bookings',
        headers: { 'idempotency-key': 'conformance-appointment.book' },
        json: {},
      });
    expect(
      await failures(
        withCommands({
          async 'appointment.book'(_command, ctx) {
            // Any 2xx taken as done, with whatever id the body has (none on a page).
            const res = await post(ctx);
            return res.status >= 200 && res.status < 300
              ? { outcome: 'done', vendorIds: [] }
              : commandOutcome('Acme book', res);
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

  it('fails a cancel taken as done on a 200 HTML page, and passes one that answers through commandOutcome', async () => {
    const cancelOnly = { 'appointment.cancel': samples['appointment.cancel'] };
    const del = (ctx: BookContext) =>
      ctx.http.request({ method: 'DELETE', url: 'https://acme.test/bookings/1' });
    expect(
      await failures(
        withCommands({
          async 'appointment.cancel'(_command, ctx) {
            const res = await del(ctx);
            return res.status >= 200 && res.status < 300
              ? { outcome: 'done' }
              : commandOutcome('Acme cancel', res);
          },
        }),
        cancelOnly,
      ),
    ).toEqual([
      "appointment.cancel: the vendor answered 200 with an HTML page (a proxy or maintenance page): expected transient (commandOutcome: a 2xx HTML page is a proxy's or a maintenance page's, not the vendor's answer), got done",
    ]);
    expect(
      await failures(
        withCommands({
          async 'appointment.cancel'(_command, ctx) {
            return commandOutcome('Acme cancel', await del(ctx));
          },
        }),
        cancelOnly,
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
      "appointment.cancel: the vendor answered 200 with an HTML page (a proxy or maintenance page): expected transient (commandOutcome: a 2xx HTML page is a proxy's or a maintenance page's, not the vendor's answer), got done",
      'appointment.reschedule: the vendor answered 429 with Retry-After: 7: expected retryAfterMs 7000 (parseRetryAfter), got undefined',
      "appointment.reschedule: the vendor answered 422: the handler threw TypeError: Cannot read properties of undefined (reading 'value') (the hub would retry it as transient, forever)",
      "appointment.reschedule: the vendor answered 200 with an HTML page (a proxy or maintenance page): the handler threw TypeError: Cannot read properties of undefined (reading 'value') (the hub would retry it as transient, forever)",
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
