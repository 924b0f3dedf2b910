/**
 * The example approver of docs/gates.md, run as written (only its port is the test's) as the
 * approver of a subscription that also receives the approval request types, as the example
 * configuration's `crm` does (`appointment.*`): its refusal reaches the vendor, and the event's own
 * delivery to it, with the same `webhook-id`, is taken (2xx). The example answered that delivery
 * 409 too, a failure the hub retried for the schedule's 27.5 hours and then recorded as dead
 * (downstream-consumer audit).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { useTestDatabase } from '@switchyard/testing';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateSecret } from '../delivery/sign.ts';
import type { Hub } from '../pipeline/hub.ts';
import type { Gates } from './gates.ts';
import { API_KEY, dpFixture, pushTo, startGatesHub } from './gates-hub.test-support.ts';

const doc = readFileSync(new URL('../../../../docs/gates.md', import.meta.url), 'utf8');
/** The example's code: the one `js` block under "Example approver". */
const example = /### Example approver[^\n]*\n+```js\n([\s\S]*?)\n```/.exec(doc)?.[1];

const database = useTestDatabase();
let hub: Hub;
let gates: Gates;
let server: http.Server | undefined;

beforeAll(async () => {
  ({ hub, gates } = await startGatesHub(database.url(), {
    gates: { approverCacheMs: 0 },
    options: { retryScheduleMs: [0, 100, 100], retryJitter: 0 },
  }));
  await hub.instances.upsert({
    id: 'dp',
    connector: 'docplanner',
    mode: 'push',
    settings: { pushAuth: { apiKey: API_KEY } },
    gate: { deadlineMs: 5000, default: 'approve' },
  });
});
afterAll(async () => {
  server?.close();
  await gates?.stop();
  await hub?.stop();
});

/** Runs the example's code with its imports given and its server on a free port; the port. */
async function runExample(secret: string): Promise<number> {
  expect(example, 'docs/gates.md has no example approver').toBeDefined();
  const body = example!.replace(/^import .*$/gm, '');
  const createServer = (handler: http.RequestListener) => {
    server = http.createServer(handler);
    return { listen: () => server!.listen(0, '127.0.0.1') };
  };
  new Function('createServer', 'Webhook', 'process', body)(createServer, Webhook, {
    env: { SWITCHYARD_SECRET: secret },
  });
  await new Promise<void>((resolve) => server!.once('listening', resolve));
  return (server!.address() as AddressInfo).port;
}

it("refuses a taken slot to the vendor, and takes the same event's delivery (2xx, once)", async () => {
  const secret = generateSecret();
  const port = await runExample(secret);
  await hub.subscriptions.create({
    id: 'crm',
    url: `http://127.0.0.1:${port}/switchyard`,
    eventTypes: ['appointment.*'],
    approver: true,
    secrets: [secret],
    allowPrivateAddresses: true,
  });
  // The fixture's slot starts at 2026-03-10T11:30:00+01:00, the example's busy one.
  const r = await pushTo(hub, 'dp', dpFixture('slot-booking'));
  expect(r.status).toBe(409);
  expect(r.ok && r.body).toEqual({ error_code: 1 });

  // The event is stored by the normalize worker, then delivered (the retries are 100 ms apart).
  let deliveries: Awaited<ReturnType<Hub['deliveries']['list']>>['items'] = [];
  for (const until = Date.now() + 10_000; Date.now() < until; ) {
    const [event] = (await hub.events.list({ type: 'appointment.booking_requested' })).items;
    deliveries = event ? (await hub.deliveries.list({ eventId: event.id })).items : [];
    if (deliveries.some((d) => d.status === 'succeeded' || d.status === 'dead')) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  expect(deliveries.map((d) => [d.status, d.attempts, d.lastStatusCode])).toEqual([['succeeded', 1, 204]]);
});

it("takes a subscription's test event (no sequence, not a question) with a 2xx and goes on serving", async () => {
  // An approver subscription receives more than questions: `POST /v1/subscriptions/{id}/test`
  // (`switchyard subscriptions test`) sends `hub.test`, which has no sequence and no `proposed`.
  // The example read `event.data.proposed.start` of it, threw in its handler and, as a process of
  // its own, died (doc-examples audit).
  server?.close();
  const secret = generateSecret();
  const port = await runExample(secret);
  await hub.subscriptions.create({
    id: 'crm-test',
    url: `http://127.0.0.1:${port}/switchyard`,
    eventTypes: ['appointment.*'],
    approver: true,
    secrets: [secret],
    timeoutMs: 2000,
    allowPrivateAddresses: true,
  });
  const first = await hub.sendTestEvent('crm-test');
  expect(first).toMatchObject({ ok: true, statusCode: 204 });
  expect(await hub.sendTestEvent('crm-test')).toMatchObject({ ok: true, statusCode: 204 });
});
