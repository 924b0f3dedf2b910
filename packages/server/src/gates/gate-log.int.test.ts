/**
 * Gate requests the connector cannot read (a vendor that changed its approval request, a connector
 * bug): each is answered the instance's default and stored with its error, and each was a warning,
 * without bound. Now at most one a minute per instance (logging/repeats.ts), the rest at debug.
 */
import type { JsonObject } from '@switchyard/core';
import { useTestDatabase } from '@switchyard/testing';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Hub } from '../pipeline/hub.ts';
import type { Gates } from './gates.ts';
import { API_KEY, dpFixture, pushTo, startGatesHub } from './gates-hub.test-support.ts';

const database = useTestDatabase();
let hub: Hub;
let gates: Gates;
const log: { level: number; msg: string; instance?: string; suppressed?: number }[] = [];

beforeAll(async () => {
  ({ hub, gates } = await startGatesHub(database.url(), {
    gates: {
      worker: true,
      logger: pino({ level: 'debug' }, { write: (line: string) => log.push(JSON.parse(line)) }),
    },
    options: { retention: { cron: false } },
  }));
  await hub.instances.upsert({
    id: 'dp',
    connector: 'docplanner',
    mode: 'push',
    settings: { pushAuth: { apiKey: API_KEY } },
    gate: { deadlineMs: 2000, default: 'approve' },
  });
});

afterAll(async () => {
  await gates?.stop();
  await hub?.stop();
});

/** A slot-booking the connector cannot make an approval request of (no start time). */
function unreadable(n: number): JsonObject {
  const body = dpFixture('slot-booking');
  const request = (body.data as JsonObject).visit_booking_request as JsonObject;
  delete request.start_at;
  (request.patient as JsonObject).phone = `+48600${String(200000 + n)}`;
  body.created_at = `2026-03-20T11:00:${String(n).padStart(2, '0')}+01:00`;
  return body;
}

it('gate requests the connector cannot read are each answered, and warned about once per instance', async () => {
  const requests = 3;
  for (let i = 0; i < requests; i++) await pushTo(hub, 'dp', unreadable(i));
  await gates.drain();
  const said = log.filter((l) => l.msg.startsWith('gate request not understood'));
  expect(said).toHaveLength(requests);
  const warnings = said.filter((l) => l.level === 40);
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ instance: 'dp', suppressed: 0 });
});
