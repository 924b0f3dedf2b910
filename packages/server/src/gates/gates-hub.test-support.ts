/**
 * The setup the gate tests share (gates.int, take-up-faults.int): a hub with the approval gates on
 * the test database (the Docplanner connector), Docplanner's fixtures, a push to an instance with
 * its key, and an approver subscription to a recording subscriber. What each file varies (the
 * gates' options, the hub's retention and workers, the slot-bookings it makes) stays in the file.
 */
import { docplannerConnector } from '@switchyard/connector-docplanner';
import type { JsonObject } from '@switchyard/core';
import { inboundRequest, type RecordingSubscriber, startRecordingSubscriber } from '@switchyard/testing';
import pino from 'pino';
import { generateSecret } from '../delivery/sign.ts';
import { fixture } from '../e2e/connectors/fixtures.test-support.ts';
import { createHub, type Hub } from '../pipeline/hub.ts';
import type { HubConfig } from '../pipeline/hub-config.ts';
import { createGates, type Gates, type GatesOptions } from './gates.ts';

/** The hubs' secret key (a forked gate process, gate-process.test-support.ts, is given it too). */
export const SECRET_KEY = 'gates-test-secret-key-0123456789';
/** The Docplanner instances' push key. */
export const API_KEY = 'dp-push-key';

/** A Docplanner fixture by name (`slot-booking`), a fresh copy to change. */
export const dpFixture = (name: string): JsonObject => fixture('docplanner', `${name}.json`);

/**
 * A started hub with started gates on `databaseUrl`. The hub's options: polls every 200 ms, no
 * instance cache, no retention schedule, then `options`.
 *
 * @example
 * ```ts
 * const { hub, gates } = await startGatesHub(database.url(), { gates: { worker: true, approverCacheMs: 0 } });
 * ```
 */
export async function startGatesHub(
  databaseUrl: string,
  o: { gates?: GatesOptions; options?: HubConfig['options'] } = {},
): Promise<{ hub: Hub; gates: Gates }> {
  const gates = createGates(o.gates);
  const hub = await createHub({
    databaseUrl,
    connectors: [docplannerConnector],
    secretKey: SECRET_KEY,
    logger: pino({ level: 'silent' }),
    options: { pollIntervalMs: 200, instanceCacheMs: 0, retention: { cron: false }, ...o.options },
    ...gates.hooks,
  });
  await hub.start();
  await gates.start(hub.host);
  return { hub, gates };
}

/** A Docplanner push of `body` to `instanceId` with the push key; its answer (an ingest failure throws). */
export async function pushTo(hub: Hub, instanceId: string, body: JsonObject) {
  const r = await hub.ingest(instanceId, inboundRequest({ headers: { 'x-api-key': API_KEY }, body }));
  if (!r.ok) throw new Error(`ingest failed: ${JSON.stringify(r.problem)}`);
  return r;
}

/**
 * An approver subscription `id` on `hub` to a new recording subscriber answering as `answer` says;
 * the subscriber (the caller closes it). Ordinary deliveries go elsewhere: it only sees approval
 * requests.
 */
export async function addApprover(
  hub: Hub,
  id: string,
  answer: Parameters<typeof startRecordingSubscriber>[0] = {},
  filters?: JsonObject,
): Promise<RecordingSubscriber> {
  const secret = generateSecret();
  const sub = await startRecordingSubscriber({ secrets: secret, ...answer });
  try {
    await hub.subscriptions.create({
      id,
      url: sub.url,
      eventTypes: ['schedule.updated'],
      approver: true,
      ...(filters ? { approverFilters: filters } : {}),
      secrets: [secret],
      allowPrivateAddresses: true,
    });
  } catch (error) {
    await sub.close();
    throw error;
  }
  return sub;
}
