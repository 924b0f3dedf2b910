import { describe, expect, it } from 'vitest';
import { isConnectorError } from '../errors/index.ts';
import type { JsonObject, JsonValue } from '../json.ts';
import { createAjv } from '../validate.ts';
import {
  CREATE_SETTLE_MS,
  commandOutcome,
  createdOutcome,
  dedupeKeyOf,
  emit,
  ignore,
  inboundRequestHead,
  isHtmlPage,
  nextSendMark,
  normalizeHeaders,
  PATH_SEGMENT_SECRET_MESSAGE,
  parseFormBody,
  parseJsonBody,
  parseJsonObjectBody,
  parseRetryAfter,
  pathSegmentSecretRule,
  provesNotCarriedOut,
  refusedResendLookedUp,
  sendTimes,
  stillLanding,
  timingSafeEqualString,
  trimmedText,
  unchangedWhen,
  vendorReadFailure,
} from './helpers.ts';
import type { CommandResult, InboundRequest, StateStore } from './types.ts';

function request(body: string | Buffer, contentType?: string): InboundRequest {
  return {
    route: 'default',
    params: {},
    query: {},
    method: 'POST',
    headers: contentType === undefined ? {} : { 'content-type': contentType },
    rawBody: typeof body === 'string' ? Buffer.from(body) : body,
    sourceIp: '127.0.0.1',
    receivedAt: new Date('2026-03-10T10:00:00Z'),
  };
}

function badRequestMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isConnectorError(error) && error.kind === 'bad_request') return error.message;
    throw error;
  }
  throw new Error('expected a bad_request ConnectorError');
}

describe('timingSafeEqualString', () => {
  it('is true only for the same string', () => {
    expect(timingSafeEqualString('s3cret', 's3cret')).toBe(true);
    expect(timingSafeEqualString('s3cret', 's3creT')).toBe(false);
    expect(timingSafeEqualString('s3cre', 's3cret')).toBe(false);
    expect(timingSafeEqualString('', 's3cret')).toBe(false);
    expect(timingSafeEqualString(undefined, 's3cret')).toBe(false);
    expect(timingSafeEqualString(null, '')).toBe(false);
    expect(timingSafeEqualString('', '')).toBe(true);
    expect(timingSafeEqualString('zażółć', 'zażółć')).toBe(true);
  });
});

describe('parseJsonBody', () => {
  it('parses JSON with or without a JSON content type', () => {
    expect(parseJsonBody(request('{"name":"slot-booked"}', 'application/json; charset=utf-8'))).toEqual({
      name: 'slot-booked',
    });
    expect(parseJsonBody(request('[1,2]'))).toEqual([1, 2]);
    expect(parseJsonBody(request('{"a":1}', 'text/plain'))).toEqual({ a: 1 });
    expect(parseJsonBody(request('{"a":1}', 'application/vnd.acme+json'))).toEqual({ a: 1 });
  });

  it('refuses what is not JSON with a bad_request error saying why', () => {
    expect(
      badRequestMessage(() => parseJsonBody(request('a=1', 'application/x-www-form-urlencoded'))),
    ).toMatch(/content-type/);
    expect(badRequestMessage(() => parseJsonBody(request('')))).toMatch(/empty/);
    expect(badRequestMessage(() => parseJsonBody(request(Buffer.from([0x7b, 0xff, 0x7d]))))).toMatch(/UTF-8/);
    expect(badRequestMessage(() => parseJsonBody(request('{"a":1,}')))).toMatch(/not valid JSON/);
  });

  it('requires an object when asked', () => {
    expect(parseJsonObjectBody(request('{"a":1}'))).toEqual({ a: 1 });
    expect(badRequestMessage(() => parseJsonObjectBody(request('[1]')))).toMatch(/JSON object/);
    expect(badRequestMessage(() => parseJsonObjectBody(request('null')))).toMatch(/JSON object/);
  });
});

describe('parseFormBody', () => {
  const FORM = 'application/x-www-form-urlencoded';

  it('reads the fields of a form body, decoding + and %XX, the last of a repeated name winning', () => {
    expect(parseFormBody(request('action=scheduled&id=54321&calendarID=27238', FORM))).toEqual({
      action: 'scheduled',
      id: '54321',
      calendarID: '27238',
    });
    expect(parseFormBody(request('note=a+b%26c&x=%C3%A9', `${FORM}; charset=UTF-8`))).toEqual({
      note: 'a b&c',
      x: 'é',
    });
    expect(parseFormBody(request('a=1&a=2', FORM.toUpperCase()))).toEqual({ a: '2' });
    expect(parseFormBody(request('', FORM))).toEqual({});
  });

  it('refuses a body not declared a form (any bytes parse as one) and bytes that are not UTF-8', () => {
    expect(badRequestMessage(() => parseFormBody(request('{"a":1}', 'application/json')))).toMatch(
      /expected application\/x-www-form-urlencoded, got content-type "application\/json"/,
    );
    expect(badRequestMessage(() => parseFormBody(request('a=1')))).toMatch(/content-type ""/);
    expect(badRequestMessage(() => parseFormBody(request(Buffer.from([0x61, 0x3d, 0xff]), FORM)))).toMatch(
      /UTF-8/,
    );
  });
});

describe('dedupeKeyOf', () => {
  it('is stable for the same parts and different for different parts', () => {
    const key = dedupeKeyOf('slot-booked', '2087456123', '2026-03-08T18:04:11+01:00');
    expect(key).toMatch(/^sha256:[0-9a-f]{40}$/);
    expect(dedupeKeyOf('slot-booked', '2087456123', '2026-03-08T18:04:11+01:00')).toBe(key);
    expect(dedupeKeyOf('slot-booked', '2087456123', '2026-03-08T18:04:12+01:00')).not.toBe(key);
  });

  it('joins parts unambiguously', () => {
    expect(dedupeKeyOf('a', 'bc')).not.toBe(dedupeKeyOf('ab', 'c'));
    expect(dedupeKeyOf('a,b')).not.toBe(dedupeKeyOf('a', 'b'));
    expect(dedupeKeyOf(1)).not.toBe(dedupeKeyOf('1'));
    expect(dedupeKeyOf(undefined)).toBe(dedupeKeyOf(null));
    expect(dedupeKeyOf()).not.toBe(dedupeKeyOf(null));
  });
});

describe('result builders and headers', () => {
  it('builds normalize results', () => {
    const draft = {
      type: 'appointment.created',
      subject: 'appointment/1',
      time: '2026-03-10T10:00:00Z',
      data: {},
    };
    expect(emit(draft, draft)).toEqual({ events: [draft, draft] });
    expect(ignore('no mapping')).toEqual({ events: [], ignored: 'no mapping' });
  });

  it('lower-cases header names and keeps the first of repeated values', () => {
    expect(
      normalizeHeaders({ 'Content-Type': 'application/json', 'X-Key': ['a', 'b'], Empty: undefined }),
    ).toEqual({
      'content-type': 'application/json',
      'x-key': 'a',
      empty: undefined,
    });
  });
});

describe('inboundRequestHead', () => {
  it('keeps every field of the head and makes the body unreadable, naming verifyBody', () => {
    const full = request('{"secret":"body"}', 'application/json');
    const head = inboundRequestHead(full);
    const { rawBody: _body, ...expected } = full;
    expect({ ...head }).toEqual(expected);
    expect('rawBody' in { ...head }).toBe(false);
    expect(() => (head as InboundRequest).rawBody).toThrow(/check what needs the body in push.verifyBody/);
    // The full request is left as it was.
    expect(full.rawBody.toString()).toBe('{"secret":"body"}');
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, refuses nonsense', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:27:00 GMT');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', now)).toBe(60_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
    expect(parseRetryAfter('', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('provesNotCarriedOut', () => {
  it('takes a 408 and a 429 as proof, and no 5xx on its own: a 503 with Retry-After may be a proxy after the vendor acted', () => {
    const answered = (status: number, headers: Record<string, string> = {}) =>
      provesNotCarriedOut({ status, headers, body: { error: 'Service Unavailable' } });
    expect([408, 429].map((status) => answered(status))).toEqual([true, true]);
    expect([500, 502, 503, 504].map((status) => answered(status, { 'retry-after': '30' }))).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect([200, 201, 400, 404, 409].map((status) => answered(status))).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  it("takes the vendor's own documented turn-away answer as proof, recognised by its body", () => {
    const documented = (res: { status: number; body: unknown }) =>
      res.status === 503 && (res.body as { code?: string })?.code === 'maintenance';
    expect(provesNotCarriedOut({ status: 503, headers: {}, body: { code: 'maintenance' } }, documented)).toBe(
      true,
    );
    // A proxy's 503 with its own page: no proof.
    expect(
      provesNotCarriedOut({ status: 503, headers: {}, body: '<html>Unavailable</html>' }, documented),
    ).toBe(false);
    // Never a 2xx or a refusal, whatever the predicate says.
    expect(provesNotCarriedOut({ status: 200, headers: {}, body: {} }, () => true)).toBe(false);
    expect(provesNotCarriedOut({ status: 409, headers: {}, body: {} }, () => true)).toBe(false);
  });
});

describe('vendorReadFailure', () => {
  const read = { api: 'the Acme API', entity: 'appointment 7', credentials: 'the API key' };
  const failure = (status: number, headers: Record<string, string> = {}) => {
    const error = vendorReadFailure({ status, headers }, read);
    return { kind: error.kind, message: error.message, retryAfterMs: error.retryAfterMs };
  };

  it('is permanent on 401 and 403: the settings are wrong, and a retry would be refused alike', () => {
    expect(failure(401)).toEqual({
      kind: 'permanent',
      message: 'the Acme API refused the API key (HTTP 401): check the instance settings',
      retryAfterMs: undefined,
    });
    expect(failure(403).kind).toBe('permanent');
  });

  it("is transient on 408, 429 and 5xx, with the answer's Retry-After", () => {
    expect(failure(503, { 'retry-after': '120' })).toEqual({
      kind: 'transient',
      message: 'the Acme API answered 503 for appointment 7',
      retryAfterMs: 120_000,
    });
    for (const status of [408, 429, 500, 502]) expect(failure(status)).toMatchObject({ kind: 'transient' });
  });

  it('is transient on a 2xx without the entity (a proxy page), permanent on any other status', () => {
    expect(failure(200)).toMatchObject({
      kind: 'transient',
      message: 'the Acme API answered 200 for appointment 7 without it',
    });
    expect(failure(204).kind).toBe('transient');
    for (const status of [301, 400, 404, 410, 422]) {
      expect(failure(status)).toMatchObject({
        kind: 'permanent',
        message: `the Acme API answered ${status} for appointment 7`,
      });
    }
  });

  it('keeps the details given, for the log', () => {
    const error = vendorReadFailure(
      { status: 500, headers: {} },
      { ...read, details: { appointmentId: '7' } },
    );
    expect(error.details).toEqual({ appointmentId: '7' });
  });
});

describe('commandOutcome', () => {
  const answer = (status: number, headers: Record<string, string> = {}, body: unknown = '') => ({
    status,
    headers,
    body: body as string,
  });

  it('is done on 2xx, keeping the answer', () => {
    expect(commandOutcome('Acme cancel', answer(204))).toEqual({
      outcome: 'done',
      vendor: { status: 204, body: '' },
    });
  });

  it('is transient on 408, 429 and 5xx, with the Retry-After as retryAfterMs', () => {
    expect(commandOutcome('Acme cancel', answer(429, { 'retry-after': '7' }))).toEqual({
      outcome: 'transient',
      message: 'Acme cancel answered 429',
      retryAfterMs: 7000,
      vendor: { status: 429, body: '' },
    });
    for (const status of [408, 500, 503]) {
      const result = commandOutcome('Acme cancel', answer(status));
      expect([result.outcome, 'retryAfterMs' in result]).toEqual(['transient', false]);
    }
  });

  it("is permanent on any other status, ending the message with the vendor's words", () => {
    const body = { errors: { starts_at: ['is taken'] } };
    expect(commandOutcome('Acme book', answer(422, {}, body), 'starts_at is taken')).toEqual({
      outcome: 'permanent',
      message: 'Acme book answered 422: starts_at is taken',
      vendor: { status: 422, body },
    });
    expect(commandOutcome('Acme book', answer(404)).outcome).toBe('permanent');
    expect(commandOutcome('Acme book', answer(302)).outcome).toBe('permanent');
  });
});

describe('createdOutcome', () => {
  const idOf = (body: JsonObject) => body.id;
  const html = '<html><body>Down for maintenance</body></html>';

  it('is done with the id as vendorIds when the 2xx answer is JSON naming it', () => {
    expect(createdOutcome('Acme book', { status: 201, headers: {}, body: { id: 7 } }, idOf)).toEqual({
      outcome: 'done',
      vendorIds: ['7'],
      vendor: { status: 201, body: { id: 7 } },
    });
  });

  it('is transient, not done, on a 2xx without the JSON that names what was made', () => {
    const page = createdOutcome(
      'Acme book',
      { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: html },
      idOf,
    );
    expect(page).toEqual({
      outcome: 'transient',
      message:
        'Acme book answered 200 (text/html) with no JSON: not taken as done (a proxy or a maintenance page answers so); retried, and the next try checks before it writes again',
      vendor: { status: 200, body: html },
    });
    for (const body of [{}, { id: '' }, { id: null }, '', [1]] as JsonValue[]) {
      const result = createdOutcome('Acme book', { status: 201, headers: {}, body }, idOf);
      expect(result.outcome, JSON.stringify(body)).toBe('transient');
    }
    expect(createdOutcome('Acme book', { status: 200, headers: {}, body: { ok: true } }, idOf)).toMatchObject(
      {
        outcome: 'transient',
        message: expect.stringContaining('answered 200 with a JSON object without the id of what it made'),
      },
    );
  });

  it('is transient, not done, on an id the hub could not keep: too long, or with control characters', () => {
    // A 10 kB id failed the alias's write (index row too large) after the booking was made, a NUL
    // any write of it; '__proto__' and a 300-character id are ids like any other.
    for (const id of ['x'.repeat(10_000), 'x'.repeat(301), 'a\u0000b', 'a\nb']) {
      const result = createdOutcome('Acme book', { status: 201, headers: {}, body: { id } }, idOf);
      expect(result, id.slice(0, 10)).toMatchObject({
        outcome: 'transient',
        message: expect.stringMatching(
          /^Acme book answered 201 with an id the hub cannot keep \((\d+ characters|control characters)\)/,
        ),
      });
    }
    // A number JSON cannot read exactly: 12345678901234567890 reads as …000, another appointment's id.
    const rounded = createdOutcome(
      'Acme book',
      { status: 201, headers: {}, body: JSON.parse('{"id":12345678901234567890}') },
      idOf,
    );
    expect(rounded).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('with an id the hub cannot keep (the number 12345678901234567000'),
    });
    for (const id of [1.5, 1e21, Number.MAX_SAFE_INTEGER + 1]) {
      const result = createdOutcome('Acme book', { status: 201, headers: {}, body: { id } }, idOf);
      expect(result.outcome, String(id)).toBe('transient');
    }
    expect(
      createdOutcome('Acme book', { status: 201, headers: {}, body: { id: Number.MAX_SAFE_INTEGER } }, idOf),
    ).toMatchObject({ outcome: 'done', vendorIds: [String(Number.MAX_SAFE_INTEGER)] });
    for (const id of ['__proto__', 'x'.repeat(300)])
      expect(createdOutcome('Acme book', { status: 201, headers: {}, body: { id } }, idOf)).toMatchObject({
        outcome: 'done',
        vendorIds: [id],
      });
  });

  it('is commandOutcome for any other status', () => {
    expect(
      createdOutcome('Acme book', { status: 503, headers: { 'retry-after': '3' }, body: html }, idOf),
    ).toEqual(commandOutcome('Acme book', { status: 503, headers: { 'retry-after': '3' }, body: html }));
    expect(
      createdOutcome('Acme book', { status: 409, headers: {}, body: { error: 'taken' } }, idOf, 'taken'),
    ).toMatchObject({ outcome: 'permanent', message: 'Acme book answered 409: taken' });
  });
});

describe('unchangedWhen', () => {
  it('marks a done result unchanged when asked, and leaves every other outcome as it is', () => {
    const done = { outcome: 'done', vendor: { status: 204, body: '' } } as const;
    expect(unchangedWhen(done, true)).toEqual({ ...done, unchanged: true });
    expect(unchangedWhen(done, false)).toEqual(done);
    const transient = { outcome: 'transient', message: 'answered 503' } as const;
    const permanent = { outcome: 'permanent', message: 'answered 404' } as const;
    expect(unchangedWhen(transient, true)).toEqual(transient);
    expect(unchangedWhen(permanent, true)).toEqual(permanent);
    // A repeat after a lost answer that also changed nothing now: both said.
    expect(unchangedWhen({ outcome: 'done', alreadyDone: true }, true)).toEqual({
      outcome: 'done',
      alreadyDone: true,
      unchanged: true,
    });
  });
});

describe('commandOutcome and a 2xx HTML page', () => {
  it('is transient, not done, for a page; done for JSON, text or nothing', () => {
    const page = {
      status: 200,
      headers: { 'content-type': 'text/html' },
      body: '<h1>Down for maintenance</h1>',
    };
    expect(isHtmlPage(page)).toBe(true);
    expect(isHtmlPage({ headers: {}, body: ' <!doctype html><p>x</p>' })).toBe(true);
    expect(commandOutcome('Acme cancel', page)).toEqual({
      outcome: 'transient',
      message:
        "Acme cancel answered 200 (text/html) with an HTML page, not the API's answer: not taken as done (a proxy or a maintenance page answers so); retried",
      vendor: { status: 200, body: page.body },
    });
    for (const body of [{ ok: true }, 'OK', ''] as JsonValue[])
      expect(commandOutcome('Acme cancel', { status: 200, headers: {}, body }).outcome).toBe('done');
  });
});

describe('refusedResendLookedUp', () => {
  /** A command's state in a Map, as the hub keeps it per command. */
  const store = () => {
    const m = new Map<string, JsonValue>();
    const s: StateStore = {
      get: async <T extends JsonValue>(k: string) => m.get(k) as T | undefined,
      set: async (k, v) => void m.set(k, v),
      delete: async (k) => void m.delete(k),
    };
    return { m, s };
  };
  const earlier = { at: '2026-03-10T09:00:00.000Z', last: '2026-03-10T09:00:00.000Z' };

  it('done: the booking found ends the command and its send mark goes', async () => {
    const { m, s } = store();
    m.set('sent', { at: earlier.at, last: '2026-03-10T09:03:00.000Z' });
    const found: CommandResult = { outcome: 'done', alreadyDone: true, vendorIds: ['7001'] };
    expect(await refusedResendLookedUp(s, 'sent', earlier, found)).toBe(found);
    expect(m.has('sent')).toBe(false);
  });

  it("a lookup that failed: its outcome, and the earlier send's mark as it was before this send", async () => {
    const { m, s } = store();
    m.set('sent', { at: earlier.at, last: '2026-03-10T09:03:00.000Z' });
    const failed: CommandResult = { outcome: 'transient', message: 'lookup answered 503' };
    expect(await refusedResendLookedUp(s, 'sent', earlier, failed)).toBe(failed);
    expect(m.get('sent')).toEqual(earlier);
  });

  it('nothing found: undefined (the refusal stands), the mark untouched', async () => {
    const { m, s } = store();
    m.set('sent', earlier);
    expect(await refusedResendLookedUp(s, 'sent', earlier, undefined)).toBeUndefined();
    expect(m.get('sent')).toEqual(earlier);
  });
});

describe('stillLanding', () => {
  it('is transient while the last send is younger than CREATE_SETTLE_MS, then lets it go again', () => {
    const now = Date.parse('2026-03-10T10:00:00Z');
    expect(stillLanding('booking', now - 1000, now)).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('(119 s from now)'),
    });
    expect(stillLanding('booking', now - CREATE_SETTLE_MS, now)).toBeUndefined();
    expect(stillLanding('booking', undefined, now)).toBeUndefined();
    expect(stillLanding('booking', Number.NaN, now)).toBeUndefined();
  });
});

describe('sendTimes and nextSendMark', () => {
  it('keep the first send time across sends and count the wait from the last', () => {
    const t0 = Date.parse('2026-03-10T10:00:00Z');
    const first = nextSendMark(undefined, t0);
    expect(first).toEqual({ at: '2026-03-10T10:00:00.000Z', last: '2026-03-10T10:00:00.000Z' });
    const second = nextSendMark(first, t0 + 130_000);
    expect(second).toEqual({ at: '2026-03-10T10:00:00.000Z', last: '2026-03-10T10:02:10.000Z' });
    expect(sendTimes(second)).toEqual({ first: t0, last: t0 + 130_000 });
    // A mark of an earlier version: only `at` (both from it), or no time at all (`true`).
    expect(sendTimes({ at: '2026-03-10T10:00:00Z' })).toEqual({ first: t0, last: t0 });
    expect(sendTimes(true)).toEqual({ first: undefined, last: undefined });
    expect(sendTimes(undefined)).toEqual({ first: undefined, last: undefined });
    expect(nextSendMark(true, t0)).toEqual(first);
  });
});

describe('trimmedText', () => {
  it('reads a string without its surrounding white space, and nothing else as text', () => {
    expect(trimmedText('  Ada ')).toBe('Ada');
    expect(trimmedText('Ada Lovelace')).toBe('Ada Lovelace');
    for (const empty of ['', '   ', '\t\n', null, undefined, 42, true, {}, []])
      expect(trimmedText(empty)).toBeUndefined();
  });
});

describe('pathSegmentSecretRule', () => {
  const validate = createAjv({ allErrors: true, strict: false, verbose: true }).compile({
    type: 'object',
    properties: {
      mode: { enum: ['path', 'header', 'either'] },
      key: { type: 'string', 'x-secret': true },
    },
    ...pathSegmentSecretRule('key'),
  });
  const refusal = (auth: JsonObject) => {
    validate(auth);
    return (validate.errors ?? [])
      .filter((e) => e.keyword !== 'if')
      .map((e) => ({ at: e.instancePath, message: (e.parentSchema as JsonObject)['x-message'] }));
  };

  it('refuses in path mode what ends or changes a path segment, in its own words', () => {
    for (const key of ['a/b', 'a?b', 'a#b', 'a%41', 'a b', 'a\tb', 'a\u00a0b', 'ab\n']) {
      expect(refusal({ mode: 'path', key }), JSON.stringify(key)).toEqual([
        { at: '/key', message: PATH_SEGMENT_SECRET_MESSAGE },
      ]);
    }
    expect(refusal({ mode: 'path', key: "cw-0123_ABC.def~!$&'()*+,;=:@é" })).toEqual([]);
  });

  it('leaves the other modes, and a mode left to its default, any string', () => {
    const auths: JsonObject[] = [
      { mode: 'header', key: 'a/b?c#d%e f' },
      { mode: 'either', key: 'a/b' },
      { key: 'a/b' },
    ];
    for (const auth of auths) expect(refusal(auth), JSON.stringify(auth)).toEqual([]);
  });
});
