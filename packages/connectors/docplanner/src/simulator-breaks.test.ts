/**
 * The fake Docplanner's calendar breaks over HTTP: a place the account does not hold (an unknown
 * facility, doctor or address, or an address that is not that doctor's) is answered 404 `Object
 * not found` (the API reference's ObjectNotFound) on every break route, nothing made or echoed; a
 * missing `since` / `till` 400 as the reference words it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DocplannerSimulator } from './simulator.ts';
import { SIM_PLACE } from './simulator-writes.ts';

const sims: DocplannerSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

async function started(): Promise<{ sim: DocplannerSimulator; token: string }> {
  const sim = new DocplannerSimulator();
  await sim.start();
  sims.push(sim);
  const res = await fetch(`${sim.url}/oauth/v2/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('sim-client:sim-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials&scope=integration',
  });
  return { sim, token: ((await res.json()) as { access_token: string }).access_token };
}

type Place = { facility: string; doctor: string; address: string };

async function call(
  s: { sim: DocplannerSimulator; token: string },
  method: string,
  p: Place,
  tail: string,
  body?: unknown,
  // biome-ignore lint/suspicious/noExplicitAny: answers are read field by field in the assertions.
): Promise<{ status: number; json: any }> {
  const e = encodeURIComponent;
  const res = await fetch(
    `${s.sim.url}/api/v3/integration/facilities/${e(p.facility)}/doctors/${e(p.doctor)}/addresses/${e(p.address)}${tail}`,
    {
      method,
      headers: {
        authorization: `Bearer ${s.token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    },
  );
  const text = await res.text();
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) };
}

const SPAN = { since: '2026-05-04T09:00:00+02:00', till: '2026-05-04T10:00:00+02:00' };
const RANGE = `?since=${encodeURIComponent(SPAN.since)}&till=${encodeURIComponent(SPAN.till)}`;
const NOT_FOUND = { status: 404, json: { errors: [], message: 'Object not found' } };

describe('DocplannerSimulator calendar breaks: places the account does not hold', () => {
  it('answers 404 Object not found for an unknown facility, doctor or address, or another doctor’s address; nothing made or echoed', async () => {
    const s = await started();
    s.sim.writes.addAddress({ facility: SIM_PLACE.facility, doctor: '182799', address: '221399' });
    const made = s.sim.writes.breaks.add(SIM_PLACE, SPAN.since, SPAN.till);
    const wrong: Place[] = [
      { ...SIM_PLACE, facility: '99999' },
      { ...SIM_PLACE, doctor: '1' },
      { ...SIM_PLACE, address: '1' },
      // A known address, but another doctor's.
      { ...SIM_PLACE, address: '221399' },
    ];
    for (const p of wrong) {
      expect(await call(s, 'POST', p, '/breaks', SPAN)).toEqual(NOT_FOUND);
      expect(await call(s, 'PATCH', p, `/breaks/${made.id}`, SPAN)).toEqual(NOT_FOUND);
      expect(await call(s, 'DELETE', p, `/breaks/${made.id}`)).toEqual(NOT_FOUND);
      expect(await call(s, 'GET', p, `/breaks${RANGE}`)).toEqual(NOT_FOUND);
      expect(await call(s, 'GET', p, `/breaks/${made.id}`)).toEqual(NOT_FOUND);
    }
    expect([...s.sim.writes.breaks.all.values()]).toEqual([made]);
    expect(made.removed).toBeUndefined();
    // The registered address takes breaks for its own doctor.
    const other = { ...SIM_PLACE, doctor: '182799', address: '221399' };
    expect((await call(s, 'POST', other, '/breaks', SPAN)).status).toBe(201);
  });

  it('answers 400 for a break without since or till, as the reference words it; 201 at the account’s place', async () => {
    const s = await started();
    expect(await call(s, 'POST', SIM_PLACE, '/breaks', { till: SPAN.till })).toEqual({
      status: 400,
      json: { errors: [], message: 'Param "since" is required!' },
    });
    expect(await call(s, 'POST', SIM_PLACE, '/breaks', { since: SPAN.since })).toEqual({
      status: 400,
      json: { errors: [], message: 'Param "till" is required!' },
    });
    const ok = await call(s, 'POST', SIM_PLACE, '/breaks', SPAN);
    expect(ok).toMatchObject({ status: 201, json: { since: SPAN.since, till: SPAN.till } });
    expect((await call(s, 'PATCH', SIM_PLACE, `/breaks/${ok.json.id}`, { since: SPAN.since })).status).toBe(
      400,
    );
  });
});
