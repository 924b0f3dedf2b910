import { describe, expect, it } from 'vitest';
import { approverMatches, decide, readAnswer, recordMargin, resolvePolicy } from './protocol.ts';

const policy = { deadlineMs: 2000, defaultOutcome: 'refuse' as const };
const approve = (id: string) => ({
  subscriptionId: id,
  outcome: 'approve' as const,
  reason: null,
  vendorErrorCode: null,
});

describe('resolvePolicy', () => {
  it('reads both spellings, defaults and clamps', () => {
    expect(resolvePolicy(null)).toEqual({ deadlineMs: 2000, defaultOutcome: 'approve' });
    expect(resolvePolicy({ deadlineMs: 1500, default: 'refuse' })).toEqual({
      deadlineMs: 1500,
      defaultOutcome: 'refuse',
    });
    expect(resolvePolicy({ deadline: '1.5s' }).deadlineMs).toBe(1500);
    expect(resolvePolicy({ deadline: '300ms' }).deadlineMs).toBe(300);
    expect(resolvePolicy({ deadline: 10 }).deadlineMs).toBe(50);
    expect(resolvePolicy({ deadline: 'soon', default: 'maybe' })).toEqual({
      deadlineMs: 2000,
      defaultOutcome: 'approve',
    });
  });
});

describe('readAnswer', () => {
  it('a 2xx JSON answer cut at the read limit is no answer, not an approval', () => {
    // `{"decision":"refuse","reason":"…"}` longer than the 2 KiB read: it used to approve.
    const cut = `{"decision":"refuse","reason":"${'x'.repeat(2100)}`.slice(0, 2048);
    expect(
      readAnswer({ ok: true, status: 200, latencyMs: 1, responseSnippet: cut, responseTruncated: true }),
    ).toMatchObject({ outcome: 'unavailable', vendorErrorCode: null });
    // A long answer that is not JSON (a framework's HTML page) still approves, as documented.
    const page = `<html>${'x'.repeat(2100)}`.slice(0, 2048);
    expect(
      readAnswer({ ok: true, status: 200, latencyMs: 1, responseSnippet: page, responseTruncated: true })
        .outcome,
    ).toBe('approve');
  });

  it('a 2xx whose JSON object is malformed, or whose decision is neither approve nor refuse, is no answer', () => {
    // Each of these approved: an approver meaning no, a typo away from the protocol, let the booking through.
    const ok = (body: string) => readAnswer({ ok: true, status: 200, latencyMs: 1, responseSnippet: body });
    for (const body of [
      '{"decision":"refuse"',
      ' {decision: "refuse"}',
      '{"decision":"REFUSE"}',
      '{"decision":"reject","reason":"slot taken"}',
      '{"decision":false}',
      '{"decision":null}',
    ]) {
      expect(ok(body), body).toMatchObject({ outcome: 'unavailable', vendorErrorCode: null });
    }
    expect(ok('{"decision":"reject"}').reason).toBe(
      'the answer\'s decision "reject" is neither "approve" nor "refuse"',
    );
    // As documented: any other 2xx body approves (no decision, not an object, not JSON).
    for (const body of ['{"decision":"approve"}', '{"ok":true}', '[{"decision":"refuse"}]', 'null', 'OK'])
      expect(ok(body).outcome, body).toBe('approve');
  });

  it('keeps only what the decision can record: a 32-bit code, a reason without NUL', () => {
    // Either one failed the statement recording the decision (Postgres integer and text columns):
    // the request stayed `deciding` until the sweep, and the vendor got `{"error_code":1e+300}`.
    const refusal = (body: string) =>
      readAnswer({ ok: false, status: 409, latencyMs: 1, responseSnippet: body });
    expect(refusal('{"vendorErrorCode":1e300}').vendorErrorCode).toBeNull();
    expect(refusal('{"vendorErrorCode":2147483648}').vendorErrorCode).toBeNull();
    expect(refusal('{"vendorErrorCode":2147483647}').vendorErrorCode).toBe(2147483647);
    expect(refusal('{"reason":"slot\\u0000taken"}').reason).toBe('slot\uFFFDtaken');
    expect(
      readAnswer({
        ok: true,
        status: 200,
        latencyMs: 1,
        responseSnippet: '{"decision":"refuse","reason":"\\u0000","vendorErrorCode":-1e20}',
      }),
    ).toEqual({ outcome: 'refuse', reason: '\uFFFD', vendorErrorCode: null });
  });

  it('2xx approves unless the body refuses; 4xx refuses with reason and code; 5xx and failures are no answer', () => {
    expect(readAnswer({ ok: true, status: 204, latencyMs: 1 }).outcome).toBe('approve');
    expect(readAnswer({ ok: true, status: 200, latencyMs: 1, responseSnippet: 'not json' }).outcome).toBe(
      'approve',
    );
    expect(
      readAnswer({
        ok: true,
        status: 200,
        latencyMs: 1,
        responseSnippet: '{"decision":"refuse","reason":"busy","vendorErrorCode":4}',
      }),
    ).toEqual({ outcome: 'refuse', reason: 'busy', vendorErrorCode: 4 });
    expect(readAnswer({ ok: false, status: 403, latencyMs: 1 })).toEqual({
      outcome: 'refuse',
      reason: 'HTTP 403',
      vendorErrorCode: null,
    });
    expect(
      readAnswer({ ok: false, status: 409, latencyMs: 1, responseSnippet: '{"vendorErrorCode":2.5}' })
        .vendorErrorCode,
    ).toBeNull();
    expect(readAnswer({ ok: false, status: 503, latencyMs: 1 }).outcome).toBe('unavailable');
    expect(readAnswer({ ok: false, status: 302, latencyMs: 1 }).outcome).toBe('unavailable');
    expect(readAnswer({ ok: false, latencyMs: 1, error: 'timeout', errorKind: 'timeout' })).toMatchObject({
      outcome: 'unavailable',
      reason: 'timeout',
    });
  });
});

describe('decide', () => {
  it('waits for everyone, lets the first refusal decide, and falls back to the default', () => {
    expect(decide([], 0, policy)).toMatchObject({ outcome: 'refuse', reason: 'no_approvers' });
    expect(decide([approve('a')], 2, policy)).toBeUndefined();
    expect(decide([approve('a'), approve('b')], 2, policy)).toMatchObject({
      outcome: 'approve',
      reason: 'approved',
    });
    expect(
      decide([{ subscriptionId: 'b', outcome: 'refuse', reason: 'no', vendorErrorCode: 9 }], 3, policy),
    ).toEqual({
      outcome: 'refuse',
      reason: 'refused',
      decidedBy: 'b',
      refusalReason: 'no',
      vendorErrorCode: 9,
    });
    expect(
      decide(
        [
          approve('a'),
          { subscriptionId: 'b', outcome: 'unavailable', reason: 'down', vendorErrorCode: null },
        ],
        2,
        {
          ...policy,
          defaultOutcome: 'approve',
        },
      ),
    ).toMatchObject({ outcome: 'approve', reason: 'unavailable' });
  });
});

describe('approverMatches and recordMargin', () => {
  it('filters by approver event types and sources only', () => {
    const type = 'appointment.booking_requested';
    expect(approverMatches({ approver_filters: null }, type, 'dp')).toBe(true);
    expect(approverMatches({ approver_filters: { events: ['appointment.*'] } }, type, 'dp')).toBe(true);
    expect(
      approverMatches({ approver_filters: { eventTypes: ['appointment.reschedule_requested'] } }, type, 'dp'),
    ).toBe(false);
    expect(approverMatches({ approver_filters: { sources: ['other'] } }, type, 'dp')).toBe(false);
  });
  it('keeps 10% of the deadline, between 20 and 150 ms, to record the decision', () => {
    expect(recordMargin(2000)).toBe(150);
    expect(recordMargin(300)).toBe(30);
    expect(recordMargin(50)).toBe(20);
  });
});
