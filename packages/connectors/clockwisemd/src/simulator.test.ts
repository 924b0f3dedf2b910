import type { EventEnvelope, JsonValue, VendorRequest, VendorResponse } from '@switchyard/core';
import { inboundRequest, memoryNormalizeContext } from '@switchyard/testing';
import { startHookReceiver } from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, describe, expect, it } from 'vitest';
import { ClockwiseSimulator } from './simulator.ts';
import { clockwisemdConnector } from './testing.ts';

const KEY = 'cw-hook-key-0123456789abcdef';

/** A hook receiver answering from a script of statuses (the last one repeats). */
const receiver = (statuses: number[]) =>
  startHookReceiver({ path: '/hooks/cw', answers: statuses, whenDone: 'repeat' });

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

describe('ClockwiseSimulator push', () => {
  it('sends the key in the Authtoken header by default', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new ClockwiseSimulator({ hookUrl: hook.url, key: KEY });
    const record = await sim.push({ appointment_id: 12345, event_type: 'create' });
    expect(record.delivered).toBe(true);
    expect(hook.received[0]).toMatchObject({ url: '/hooks/cw', headers: { authtoken: KEY } });
    expect(JSON.parse(hook.received[0]!.body)).toEqual({ appointment_id: 12345, event_type: 'create' });
  });

  it('puts the key in the path, and sends the legacy action shape when asked', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new ClockwiseSimulator({
      hookUrl: hook.url,
      key: KEY,
      keyPlacement: 'path',
      legacyAction: true,
    });
    await sim.push({ appointment_id: 7, event_type: 'checkin' });
    expect(hook.received[0]!.url).toBe(`/hooks/cw/${KEY}`);
    expect(hook.received[0]!.headers.authtoken).toBeUndefined();
    expect(JSON.parse(hook.received[0]!.body)).toEqual({ appointment_id: 7, action: 'checkin' });
  });

  it('does not retry by default, and retries on the configured delays when told to', async () => {
    const failing = await receiver([503, 503, 200]);
    cleanups.push(failing.close);
    const once = new ClockwiseSimulator({ hookUrl: failing.url, key: KEY });
    expect(
      (await once.push({ appointment_id: 1, event_type: 'create' })).attempts.map((a) => a.status),
    ).toEqual([503]);

    const retrying = new ClockwiseSimulator({
      hookUrl: failing.url,
      key: KEY,
      retryDelaysMs: [1000, 1000],
      timeScale: 0.001,
    });
    const record = await retrying.push({ appointment_id: 1, event_type: 'create' });
    expect(record.attempts.map((a) => a.status)).toEqual([503, 200]);
    expect(record.delivered).toBe(true);
  });

  it('encodes a normalized event with the connector', async () => {
    const hook = await receiver([200]);
    cleanups.push(hook.close);
    const sim = new ClockwiseSimulator({ hookUrl: hook.url, key: KEY });
    const event: EventEnvelope = {
      specversion: '1.0',
      id: 'e1',
      type: 'appointment.status_reverted',
      source: 'cw',
      subject: 'appointment/h1',
      time: '2026-03-10T14:06:02-05:00',
      datacontenttype: 'application/json',
      data: {
        id: 'h1',
        status: 'arrived',
        workflowStep: 'arrived',
        vendorIds: [{ system: 'clockwisemd', value: '12345', current: true }],
      },
      connector: 'clockwisemd',
      instance: 'cw',
      vendortype: '',
    };
    await sim.push(event);
    expect(JSON.parse(hook.received[0]!.body)).toEqual({ appointment_id: 12345, event_type: 'undo_ready' });
  });
});

describe('ClockwiseSimulator REST API', () => {
  async function started() {
    const sim = new ClockwiseSimulator({ apiKey: 'api-key-1' });
    await sim.start();
    cleanups.push(() => sim.close());
    sim.setAppointment({ id: 12345, first_name: 'Maria', last_name: 'Lopez', extra_fields: [] });
    return sim;
  }

  it('serves appointments with the Authtoken checked, 404 for unknown ones', async () => {
    const sim = await started();
    const get = (id: number, token?: string) =>
      fetch(`${sim.apiBaseUrl}/appointments/${id}`, { headers: token ? { authtoken: token } : {} });
    const ok = await get(12345, 'api-key-1');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ id: 12345, first_name: 'Maria', last_name: 'Lopez', extra_fields: [] });
    expect((await get(12345, 'wrong')).status).toBe(401);
    expect((await get(12345)).status).toBe(401);
    expect((await get(999, 'api-key-1')).status).toBe(404);
    expect(sim.served.map((s) => s.status)).toEqual([200, 401, 401, 404]);
  });

  it('fails the next N calls as told, then recovers', async () => {
    const sim = await started();
    sim.failApi(2, { status: 503, retryAfterSeconds: 3 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${sim.apiBaseUrl}/appointments/12345`, {
        headers: { authtoken: 'api-key-1' },
      });
      if (i === 0) expect(res.headers.get('retry-after')).toBe('3');
      statuses.push(res.status);
    }
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('can answer late but correctly (a slow API), so a client timeout shorter than the delay aborts', async () => {
    const sim = await started();
    sim.failApi(1, { status: 0, delayMs: 300 });
    const slow = fetch(`${sim.apiBaseUrl}/appointments/12345`, {
      headers: { authtoken: 'api-key-1' },
      signal: AbortSignal.timeout(20),
    });
    await expect(slow).rejects.toThrow();
    sim.failApi(1, { status: 0, delayMs: 30 });
    const late = await fetch(`${sim.apiBaseUrl}/appointments/12345`, { headers: { authtoken: 'api-key-1' } });
    expect(late.status).toBe(200);
  });

  it('drives the connector: retried enrichment while down, enriched once it recovers', async () => {
    const sim = await started();
    const vendorApi = async (req: VendorRequest): Promise<VendorResponse> => {
      const res = await fetch(req.url, { headers: req.headers });
      return {
        status: res.status,
        headers: Object.fromEntries(res.headers),
        body: (await res.json()) as JsonValue,
      };
    };
    const config = {
      auth: { mode: 'either' as const, key: KEY },
      apiKey: 'api-key-1',
      apiBaseUrl: sim.apiBaseUrl,
    };
    const [n] = clockwisemdConnector.push!.parse(
      inboundRequest({ headers: { authtoken: KEY }, body: { appointment_id: 12345, event_type: 'create' } }),
      config,
    );
    sim.failApi(1);
    const ctx = memoryNormalizeContext({ config, vendorApi });
    await expect(clockwisemdConnector.normalize(n!, ctx)).rejects.toMatchObject({ kind: 'transient' });
    const result = await clockwisemdConnector.normalize(n!, { ...ctx, attempt: 2 });
    expect(result.events[0]?.data).toMatchObject({
      enrichment: 'enriched',
      patient: { given: 'Maria', family: 'Lopez' },
    });
  });
});
