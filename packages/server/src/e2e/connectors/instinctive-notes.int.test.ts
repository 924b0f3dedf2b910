/**
 * Instinctive Notes end to end: the simulator POSTs every documented SOAP-note webhook (the
 * connector's fixtures) over real HTTP, with the shared secret in a header on one instance and as
 * the last path segment on another; the hub delivers clinical documents as signed CloudEvents.
 */
import instinctiveNotes from '@switchyard/connector-instinctive-notes';
import { InstinctiveNotesSimulator } from '@switchyard/connector-instinctive-notes/simulator';
import type { JsonObject, JsonValue } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from './fixtures.test-support.ts';
import { bodies, type E2e, expectDelivered, startE2e } from './harness.test-support.ts';

const SECRET = 'in-e2e-secret-0123456789abcdef';

const FIXTURES: Array<{ file: string; expect: string[] | 'ignored' }> = [
  { file: 'soap-note-created.json', expect: ['document.created'] },
  { file: 'soap-note-updated.json', expect: ['document.updated'] },
  { file: 'soap-note-draft.json', expect: ['document.created'] },
  { file: 'soap-note-without-exercises.json', expect: ['document.created'] },
  { file: 'send-test-soap-note-created.json', expect: ['document.created'] },
  { file: 'invoice-created-unknown.json', expect: 'ignored' },
];

/**
 * The sample webhook of the vendor's page, verbatim: its trailing commas make it invalid JSON (real
 * deliveries are valid JSON, FACTS.md).
 */
const PAGE_SAMPLE = `{
  "created_at": "2018-03-26T14:20:00Z",
  "data": {
    "object": {
      "client_external_ref": "123456",
      "client_id": 50,
      "created_at": "2018-03-26T14:18:00Z",
      "created_by": "Simon Jones",
      "exercise_prescriptions": [
        {
          "exercise_external_ref": "444555",
          "exercise_id": 33,
          "hold_for": "20 seconds",
          "id": 1735,
          "instructions": "No bouncing",
          "name": "Stretch - Hip Flexor",
          "reps": 1,
          "rest_time": "20 seconds",
          "sets": 1,
          "times_per_day": 1,
          "times_per_week": 3,
          "tools": "Foam roller",
        },
        {
          "exercise_external_ref": "776655",
          "exercise_id": 75,
          "hold_for": "2 seconds",
          "id": 1973,
          "instructions": "",
          "name": "Chin ups",
          "reps": 5,
          "rest_time": "20 seconds",
          "sets": 3,
          "times_per_day": 1,
          "times_per_week": 3,
          "tools": "",
        }
      ],
      "id": 10,
      "name": "Standard Treatment",
      "product_prescriptions": [
        {
          "name": "Complete Sleeprrr Pillow",
          "product_external_ref": "123456",
          "product_id": 35,
        },
        {
          "name": "Flex-Heat Lupin Pack",
          "product_external_ref": "987654",
          "product_id": 275,
        }
      ],
      "recommendations": "Get more sleep, Elevate injury, Weight bearing exercise",
      "seen_at": "2018-03-26T14:15:00Z",
      "state": "final",
      "updated_at": "2018-03-26T14:18:00Z",
    },
  },
  "type": "soap_note.created"
}`;

type Body = Record<string, JsonValue> & { type: string; subject: string; data: JsonObject };

const database = useTestDatabase();
let e2e: E2e;

beforeAll(async () => {
  e2e = await startE2e({ databaseUrl: database.url(), connectors: [instinctiveNotes] });
  await e2e.hub.instances.upsert({
    id: 'in-header',
    connector: 'instinctive-notes',
    mode: 'push',
    settings: { auth: { mode: 'header', secret: SECRET } },
  });
  await e2e.hub.instances.upsert({
    id: 'in-path',
    connector: 'instinctive-notes',
    mode: 'push',
    settings: { auth: { mode: 'path', secret: SECRET } },
  });
});

afterAll(async () => {
  await e2e?.close();
});

/** Pushes every fixture through `sim` to `instanceId` and checks each delivery; returns the bodies by file. */
async function runAll(instanceId: string, sim: InstinctiveNotesSimulator): Promise<Map<string, Body>> {
  const delivered = new Map<string, Body>();
  const before = e2e.subscriber.requests.length;
  for (const f of FIXTURES) {
    const settled = await e2e.settle(instanceId, () => sim.push(fixture('instinctive-notes', f.file)));
    expect(sim.pushes[sim.pushes.length - 1]!.delivered, f.file).toBe(true);
    expect(settled.messages, f.file).toHaveLength(1);
    const message = settled.messages[0]!;
    if (f.expect === 'ignored') {
      expect(message.status, f.file).toBe('ignored');
      expect(message.reason).toBeTruthy();
      expect(settled.events).toEqual([]);
      continue;
    }
    expect(message.status, `${f.file}: ${message.reason ?? ''}`).toBe('normalized');
    expect(
      settled.deliveries.map((d) => d.type),
      f.file,
    ).toEqual(f.expect);
    settled.deliveries.forEach((d, i) => {
      expectDelivered(d, settled.events[i]!, { instanceId, connector: 'instinctive-notes' });
    });
    delivered.set(f.file, bodies(settled)[0] as Body);
  }
  const expected = FIXTURES.flatMap((f) => (f.expect === 'ignored' ? [] : f.expect));
  const accepted = e2e.subscriber.requests.slice(before).filter((r) => r.response && r.response.status < 300);
  expect(accepted.map((r) => r.type)).toEqual(expected);
  return delivered;
}

describe('instinctive-notes end to end', () => {
  let byHeader: Map<string, Body>;

  it('delivers every documented webhook (secret in a header) as signed, valid clinical documents', async () => {
    const sim = new InstinctiveNotesSimulator({
      hookUrl: e2e.hookUrl('in-header'),
      secret: SECRET,
      secretIn: 'header',
    });
    byHeader = await runAll('in-header', sim);
    const created = byHeader.get('soap-note-created.json')!;
    const updated = byHeader.get('soap-note-updated.json')!;
    expect(updated.subject).toBe(created.subject);
    expect(created.subject).toMatch(/^document\//);
    expect(created.data.domain).toBe('clinical');
    expect(byHeader.get('soap-note-draft.json')!.subject).not.toBe(created.subject);
    // "Send test" re-sends note 12 in a new envelope: the same document, another event.
    const resent = byHeader.get('send-test-soap-note-created.json')!;
    expect(resent.subject).toBe(byHeader.get('soap-note-without-exercises.json')!.subject);
    expect(resent.id).not.toBe(byHeader.get('soap-note-without-exercises.json')!.id);
  });

  it('delivers every documented webhook with the secret as the last path segment', async () => {
    const sim = new InstinctiveNotesSimulator({
      hookUrl: e2e.hookUrl('in-path'),
      secret: SECRET,
      secretIn: 'path',
    });
    const byPath = await runAll('in-path', sim);
    // Each instance keeps its own ids.
    expect(byPath.get('soap-note-created.json')!.subject).not.toBe(
      byHeader.get('soap-note-created.json')!.subject,
    );
    const { items } = await e2e.hub.inbound.list({ instanceId: 'in-path', limit: 100 });
    expect(items.every((m) => m.route === 'secret')).toBe(true);
  });

  it('delivers the vendor\'s "Send test" of the last saved note', async () => {
    const sim = new InstinctiveNotesSimulator({ hookUrl: e2e.hookUrl('in-header'), secret: SECRET });
    const draft = fixture('instinctive-notes', 'soap-note-draft.json').data as JsonObject;
    sim.save('soap_note.created', draft.object as never);
    const settled = await e2e.settle('in-header', () => sim.sendTest('soap_note.created'));
    expect(settled.deliveries.map((d) => d.type)).toEqual(['document.created']);
    expectDelivered(settled.deliveries[0]!, settled.events[0]!, {
      instanceId: 'in-header',
      connector: 'instinctive-notes',
    });
    expect(bodies(settled)[0]!.subject).toBe(byHeader.get('soap-note-draft.json')!.subject);
  });

  it('refuses a webhook with the wrong secret: the vendor retries, then marks the event failed; nothing stored', async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: 'in-header', limit: 500 })).items.length;
    const sim = new InstinctiveNotesSimulator({
      hookUrl: e2e.hookUrl('in-header'),
      secret: 'in-e2e-wrong-secret-000000000',
      firstRetryDelayMs: 10,
      retryWindowMs: 100,
    });
    const record = await sim.push(fixture('instinctive-notes', 'soap-note-created.json'));
    expect(record.attempts.length).toBeGreaterThan(1);
    expect(record.attempts.every((a) => a.status === 401)).toBe(true);
    expect(record.failed).toBe(true);
    expect((await e2e.hub.inbound.list({ instanceId: 'in-header', limit: 500 })).items).toHaveLength(before);
  });
  it("answers the page's sample (trailing commas) with a 400 problem naming the JSON error, never echoing a path secret", async () => {
    const before = (await e2e.hub.inbound.list({ instanceId: 'in-path', limit: 500 })).items.length;
    for (const [url, headers] of [
      [e2e.hookUrl('in-header'), { 'x-instinctive-secret': SECRET }],
      [e2e.hookUrl('in-path', SECRET), {}],
      [e2e.hookUrl('in-path', 'in-e2e-wrong-secret-000000000'), {}],
    ] as const) {
      const answer = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: PAGE_SAMPLE,
      });
      const text = await answer.text();
      expect(answer.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      // A problem answer may land in the vendor's delivery log or a proxy's: the path secret
      // (right or wrong) stays out of it.
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('in-e2e-wrong-secret');
      if (url.endsWith('wrong-secret-000000000')) {
        expect(answer.status).toBe(401);
        continue;
      }
      expect(answer.status).toBe(400);
      expect(JSON.parse(text)).toMatchObject({
        code: 'SY_CONNECTOR_BAD_REQUEST',
        detail: expect.stringMatching(/^the request body is not valid JSON: /),
      });
    }
    expect((await e2e.hub.inbound.list({ instanceId: 'in-path', limit: 500 })).items).toHaveLength(before);
  });
});
