import type { VendorNotification } from '@switchyard/core';
import { fetchVendorHttp, memoryNormalizeContext } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { apiHeaders, type Config } from './config.ts';
import { normalize } from './normalize.ts';
import { fetchAppointments } from './pull.ts';
import { ClinikoSimulator } from './simulator.ts';
import { fixtureSettings } from './testing.ts';

const sims: ClinikoSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

/** A simulator whose clock the test sets, and the connector pulling it as the hub's poller does. */
async function setup(settings: Partial<Config> = {}) {
  const clock = { at: Date.parse('2026-03-01T10:00:00Z') };
  const sim = new ClinikoSimulator({ apiKey: fixtureSettings.apiKey, now: () => new Date(clock.at) });
  sims.push(sim);
  const config: Config = {
    ...fixtureSettings,
    apiBaseUrl: await sim.start(),
    startFrom: '2026-01-01T00:00:00Z',
    ...settings,
  };
  const ctx = memoryNormalizeContext({
    instanceId: 'cliniko-main',
    config,
    vendorApi: fetchVendorHttp.request,
  });
  const drain = async (from: string | null) => {
    const all: VendorNotification[] = [];
    let cursor = from;
    for (let turn = 0; turn < 60; turn += 1) {
      const batch = await fetchAppointments(ctx, cursor);
      all.push(...batch.notifications);
      cursor = batch.cursor ?? cursor;
      if (!batch.more) return { all, cursor };
    }
    throw new Error('the pull never ended');
  };
  /** The types the notifications normalize to, in order (ignored ones left out). */
  const told = async (all: VendorNotification[]) => {
    const types: string[] = [];
    for (const n of all) types.push(...(await normalize(n, ctx)).events.map((e) => e.type));
    return types;
  };
  return { sim, clock, config, drain, told };
}

const block = (id: string, starts: string, ends: string) => ({
  id,
  starts_at: starts,
  ends_at: ends,
  practitioner: { links: { self: 'https://api.au2.cliniko.test/v1/practitioners/7' } },
  business: { links: { self: 'https://api.au2.cliniko.test/v1/businesses/3' } },
});

describe('Cliniko simulator and connector: unavailable blocks', () => {
  it('reads every block when equal updated_at straddle pages, beside the appointments, each list by its own keyset', async () => {
    const { sim, clock, drain } = await setup({ perPage: 2, overlapSeconds: 0 });
    for (let id = 100; id < 107; id++)
      sim.putBlock(block(String(id), '2026-03-10T12:00:00Z', '2026-03-10T13:00:00Z'));
    sim.put({ id: '1', starts_at: '2026-03-10T10:00:00Z' });
    clock.at += 1000;
    for (let id = 107; id < 110; id++)
      sim.putBlock(block(String(id), '2026-03-11T12:00:00Z', '2026-03-11T13:00:00Z'));
    const first = await drain(null);
    const keys = (all: VendorNotification[]) => [...new Set(all.map((n) => n.orderingKey))].sort();
    expect(keys(first.all)).toEqual([
      'individual_appointment:1',
      ...Array.from({ length: 10 }, (_, n) => `unavailable_block:${100 + n}`),
    ]);
    // The next round lists only what changed since: one block moved, one deleted.
    clock.at += 1000;
    sim.putBlock({ id: '101', ends_at: '2026-03-10T14:00:00Z' });
    clock.at += 1000;
    sim.putBlock({ id: '102', deleted_at: '2026-03-01T10:00:03Z' });
    const next = await drain(first.cursor);
    // Besides the last second of each list again (an inclusive watermark: the dedupe keys drop
    // them), the two changes.
    const seen = new Set(first.all.map((n) => n.dedupeKey));
    expect(next.all.map((n) => n.dedupeKey).filter((k) => !seen.has(k))).toEqual([
      'unavailable_block:101@2026-03-01T10:00:02Z',
      'unavailable_block:102@2026-03-01T10:00:03Z',
    ]);
    // Each round asks the four lists in turn (the deleted block is on the last one only).
    const lists = [...new Set(sim.requests.map((r) => r.url.split('?')[0]))];
    expect(lists).toEqual([
      '/v1/individual_appointments',
      '/v1/individual_appointments/cancelled',
      '/v1/unavailable_blocks',
      '/v1/unavailable_blocks/deleted',
    ]);
  });

  it('tells a block made, moved and deleted at Cliniko as slot.blocked, slot.block_moved and slot.unblocked', async () => {
    const { sim, clock, config, drain, told } = await setup();
    const api = (method: string, path: string, json?: unknown) =>
      fetch(`${config.apiBaseUrl}${path}`, {
        method,
        headers: { ...apiHeaders(config), 'content-type': 'application/json' },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
    const made = await api('POST', '/unavailable_blocks', {
      starts_at: '2026-03-10T12:00:00Z',
      ends_at: '2026-03-10T13:00:00Z',
      practitioner_id: '7',
      business_id: '3',
    });
    expect(made.status).toBe(201);
    const id = String(((await made.json()) as { id: string }).id);
    const first = await drain(null);
    expect(await told(first.all)).toEqual(['slot.blocked']);
    clock.at += 1000;
    expect((await api('PUT', `/unavailable_blocks/${id}`, { ends_at: '2026-03-10T14:00:00Z' })).status).toBe(
      200,
    );
    const moved = await drain(first.cursor);
    expect(await told(moved.all)).toEqual(['slot.block_moved']);
    clock.at += 1000;
    expect((await api('DELETE', `/unavailable_blocks/${id}`)).status).toBe(204);
    // Deleted: gone from every call but the deleted list.
    expect((await api('GET', `/unavailable_blocks/${id}`)).status).toBe(404);
    expect((await api('DELETE', `/unavailable_blocks/${id}`)).status).toBe(404);
    const deleted = await drain(moved.cursor);
    expect(await told(deleted.all)).toEqual(['slot.unblocked']);
    expect(sim.getBlock(id)?.deleted_at).toBe('2026-03-01T10:00:02Z');
  });
});
