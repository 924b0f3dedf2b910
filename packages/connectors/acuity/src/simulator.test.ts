import { readFileSync } from 'node:fs';
import { inboundRequestHead } from '@switchyard/core';
import { fetchVendorHttp, inboundRequest } from '@switchyard/testing';
import { type HookReceiver, startHookReceiver } from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readAppointment } from './appointment.ts';
import { AcuitySimulator } from './simulator.ts';
import {
  type AcuityAppointment,
  acuityConnector as connector,
  fixtureSettings,
  fixtureUrl,
} from './testing.ts';

const form = readFileSync(fixtureUrl('appointment-scheduled.form'), 'utf8');
const example = JSON.parse(
  readFileSync(fixtureUrl('appointment-54321.json', 'fixtures-api'), 'utf8'),
) as AcuityAppointment;

let receiver: HookReceiver;
let sim: AcuitySimulator | undefined;
beforeEach(async () => {
  receiver = await startHookReceiver({ path: '/hooks/acuity' });
});
afterEach(async () => {
  await receiver.close();
  await sim?.close();
  sim = undefined;
});

describe('AcuitySimulator', () => {
  it('POSTs the form signed as Acuity does, which the connector admits and parses', async () => {
    sim = new AcuitySimulator({ hookUrl: receiver.url, config: fixtureSettings });
    const record = await sim.push(form);
    expect(record.delivered).toBe(true);
    const got = receiver.received[0]!;
    expect(got.body).toBe(form);
    const headers = Object.fromEntries(
      Object.entries(got.headers).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
    const request = inboundRequest({ headers, body: Buffer.from(got.body) });
    connector.push!.authenticate(inboundRequestHead(request), fixtureSettings);
    connector.push!.verifyBody!(request, fixtureSettings);
    expect(connector.push!.parse(request, fixtureSettings)[0]).toMatchObject({ type: 'scheduled' });
  });

  it('retries a refused webhook on its habit (scaled), then stops', async () => {
    await receiver.close();
    receiver = await startHookReceiver({ path: '/hooks/acuity', answers: [500, 500, 500] });
    sim = new AcuitySimulator({ hookUrl: receiver.url, config: fixtureSettings, timeScale: 0.0001 });
    const record = await sim.push(form);
    expect(record.delivered).toBe(false);
    expect(record.attempts).toHaveLength(3);
  });

  it('serves the appointment read with Basic auth, and a gateway 503 when told to', async () => {
    sim = new AcuitySimulator({ config: fixtureSettings });
    await sim.start();
    sim.add(example);
    const config = { ...fixtureSettings, apiBaseUrl: sim.apiBaseUrl };
    expect((await readAppointment(fetchVendorHttp, config, '54321')).found).toMatchObject({
      firstName: 'Bob',
    });
    sim.failNext();
    expect((await readAppointment(fetchVendorHttp, config, '54321')).res).toMatchObject({
      status: 503,
      headers: { 'retry-after': '7' },
    });
    const wrong = { ...config, apiKey: 'another-key-0123456789ab' };
    expect((await readAppointment(fetchVendorHttp, wrong, '54321')).res.status).toBe(401);
  });
});
