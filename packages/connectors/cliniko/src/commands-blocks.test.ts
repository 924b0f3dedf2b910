import type { CommandRequest, VendorRequest, VendorResponse } from '@switchyard/core';
import { fetchVendorHttp, memoryCommandContext } from '@switchyard/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { blockCommands, blockUnsupported } from './commands-blocks.ts';
import type { Config } from './config.ts';
import { clinikoConnector } from './index.ts';
import { ClinikoSimulator } from './simulator.ts';
import { fixtureSettings } from './testing.ts';

const sims: ClinikoSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

async function simulated() {
  const sim = new ClinikoSimulator({ apiKey: fixtureSettings.apiKey });
  sims.push(sim);
  const config: Config = { ...fixtureSettings, apiBaseUrl: await sim.start() };
  return { sim, config };
}

const blockCommand: CommandRequest<'slot.block'> = {
  id: 'cmd-b',
  type: 'slot.block',
  data: {
    start: '2026-03-11T13:00:00+01:00',
    end: '2026-03-11T14:00:00+01:00',
    practitioner: { id: '7' },
    location: { id: '3' },
    reason: 'staff meeting',
  },
};
const moveCommand: CommandRequest<'slot.move_block'> = {
  id: 'cmd-m',
  type: 'slot.move_block',
  subject: 'slot/h1',
  data: { start: '2026-03-11T15:00:00+01:00', end: '2026-03-11T16:00:00+01:00' },
};
const unblockCommand: CommandRequest<'slot.unblock'> = {
  id: 'cmd-u',
  type: 'slot.unblock',
  subject: 'slot/h1',
  data: {},
};

const writes = (sim: ClinikoSimulator) =>
  sim.requests
    .filter((r) => r.url.startsWith('/v1/unavailable_blocks'))
    .map(
      (r) => `${r.method} ${r.url.split('?')[0]} ${r.status}${r.lostStatus ? ` (${r.lostStatus} lost)` : ''}`,
    );

describe('Cliniko block commands', () => {
  it('slot.block posts the block Cliniko documents (UTC, practitioner, business, the reason as notes) and answers its id', async () => {
    const { sim, config } = await simulated();
    const ctx = memoryCommandContext({ config, vendorApi: fetchVendorHttp.request });
    const result = await blockCommands['slot.block']!(blockCommand, ctx);
    expect(result).toMatchObject({ outcome: 'done', vendorIds: ['1000'] });
    expect(sim.getBlock('1000')).toMatchObject({
      starts_at: '2026-03-11T12:00:00Z',
      ends_at: '2026-03-11T13:00:00Z',
      notes: 'staff meeting',
      practitioner: { links: { self: `${config.apiBaseUrl}/practitioners/7` } },
      business: { links: { self: `${config.apiBaseUrl}/businesses/3` } },
    });
  });

  it('a block whose answer was lost is looked up, never posted again blind: found, done with its id; one made before the try is not it', async () => {
    const { sim, config } = await simulated();
    sim.loseAnswers(1, 502);
    const first = memoryCommandContext({ config, vendorApi: fetchVendorHttp.request });
    expect((await blockCommands['slot.block']!(blockCommand, first)).outcome).toBe('transient');
    const again = memoryCommandContext({
      config,
      attempt: 2,
      commandState: first.commandState,
      vendorApi: fetchVendorHttp.request,
    });
    expect(await blockCommands['slot.block']!(blockCommand, again)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendorIds: ['1000'],
    });
    expect(writes(sim)).toEqual([
      'POST /v1/unavailable_blocks 502 (201 lost)',
      'GET /v1/unavailable_blocks 200',
    ]);

    // The same span blocked by the front desk an hour before the try: not what the lost POST made.
    const other = await simulated();
    other.sim.putBlock({
      id: '55',
      created_at: new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
      starts_at: '2026-03-11T12:00:00Z',
      ends_at: '2026-03-11T13:00:00Z',
      practitioner: { links: { self: `${other.config.apiBaseUrl}/practitioners/7` } },
      business: { links: { self: `${other.config.apiBaseUrl}/businesses/3` } },
    });
    const failed = memoryCommandContext({
      config: other.config,
      vendorApi: () => ({ status: 503, headers: {}, body: 'upstream connect error' }),
    });
    expect((await blockCommands['slot.block']!(blockCommand, failed)).outcome).toBe('transient');
    // Not listed yet while the POST may still land: not posted again (it blocked twice once it landed).
    const early = memoryCommandContext({
      config: other.config,
      attempt: 2,
      commandState: failed.commandState,
      vendorApi: fetchVendorHttp.request,
    });
    expect(await blockCommands['slot.block']!(blockCommand, early)).toMatchObject({
      outcome: 'transient',
      message: expect.stringContaining('it may still land'),
    });
    expect(writes(other.sim)).toEqual(['GET /v1/unavailable_blocks 200']);
    // Not listed two minutes after the POST went out (the gateway's 503 came before Cliniko made it).
    const old = new Date(Date.now() - 130_000).toISOString();
    await failed.commandState.set('cliniko:block-sent', { at: old, last: old });
    const retried = memoryCommandContext({
      config: other.config,
      attempt: 2,
      commandState: failed.commandState,
      vendorApi: fetchVendorHttp.request,
    });
    const result = await blockCommands['slot.block']!(blockCommand, retried);
    expect(result).toMatchObject({ outcome: 'done', vendorIds: ['1000'] });
    expect(result).not.toHaveProperty('alreadyDone');
  });

  it('a lookup that does not answer is transient (nothing posted); a refusal of the block keeps Cliniko’s words and forgets the mark', async () => {
    const { config } = await simulated();
    const requests: VendorRequest[] = [];
    const answers: VendorResponse[] = [
      { status: 502, headers: {}, body: '' },
      { status: 503, headers: {}, body: '' },
    ];
    const vendorApi = (r: VendorRequest) => {
      requests.push(r);
      return answers.shift()!;
    };
    const first = memoryCommandContext({ config, vendorApi });
    await blockCommands['slot.block']!(blockCommand, first);
    const again = memoryCommandContext({ config, attempt: 2, commandState: first.commandState, vendorApi });
    expect((await blockCommands['slot.block']!(blockCommand, again)).outcome).toBe('transient');
    expect(requests.map((r) => r.method ?? 'GET')).toEqual(['POST', 'GET']);

    const refusing = memoryCommandContext({
      config,
      vendorApi: () => ({
        status: 422,
        headers: { 'content-type': 'application/json' },
        body: { errors: { starts_at: ['overlaps an appointment'] } },
      }),
    });
    expect(await blockCommands['slot.block']!(blockCommand, refusing)).toMatchObject({
      outcome: 'permanent',
      message: 'Cliniko unavailable block answered 422: starts_at overlaps an appointment',
    });
    expect(await refusing.commandState.get('cliniko:block-sent')).toBeUndefined();
  });

  it('refuses at once a block without practitioner or business, and an end not after the start', () => {
    const { practitioner: _p, location: _l, ...bare } = blockCommand.data;
    expect(clinikoConnector.commandUnsupported!({ type: 'slot.block', data: bare }, fixtureSettings)).toBe(
      'Cliniko blocks a calendar only with practitioner.id, location.id (the Cliniko business)',
    );
    expect(
      blockUnsupported({
        type: 'slot.move_block',
        data: { start: moveCommand.data.end, end: moveCommand.data.start },
      }),
    ).toBe("a block's end (2026-03-11T15:00:00+01:00) must be after its start (2026-03-11T16:00:00+01:00)");
    expect(blockUnsupported(blockCommand)).toBeUndefined();
  });

  it('slot.move_block PUTs the new times; sent again after a lost answer, it leaves the same block', async () => {
    const { sim, config } = await simulated();
    sim.putBlock({ id: '41', starts_at: '2026-03-11T12:00:00Z', ends_at: '2026-03-11T13:00:00Z' });
    sim.loseAnswers(1, 502);
    const ctx = memoryCommandContext({ config, vendorIds: ['41'], vendorApi: fetchVendorHttp.request });
    expect((await blockCommands['slot.move_block']!(moveCommand, ctx)).outcome).toBe('transient');
    expect((await blockCommands['slot.move_block']!(moveCommand, ctx)).outcome).toBe('done');
    expect(sim.getBlock('41')).toMatchObject({
      starts_at: '2026-03-11T14:00:00Z',
      ends_at: '2026-03-11T15:00:00Z',
    });
    expect(writes(sim)).toEqual([
      'PUT /v1/unavailable_blocks/41 502 (200 lost)',
      'PUT /v1/unavailable_blocks/41 200',
    ]);
  });

  it('slot.unblock DELETEs the block; one already gone (404) is done; a slot of another kind is refused', async () => {
    const { sim, config } = await simulated();
    sim.putBlock({ id: '42', starts_at: '2026-03-11T12:00:00Z', ends_at: '2026-03-11T13:00:00Z' });
    const ctx = memoryCommandContext({ config, vendorIds: ['42'], vendorApi: fetchVendorHttp.request });
    expect(await blockCommands['slot.unblock']!(unblockCommand, ctx)).toMatchObject({ outcome: 'done' });
    expect(sim.getBlock('42')?.deleted_at).toEqual(expect.any(String));
    expect(await blockCommands['slot.unblock']!(unblockCommand, ctx)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
    });
    const availability = memoryCommandContext({
      config,
      vendorIds: ['42'],
      current: { kind: 'availability' },
      vendorApi: fetchVendorHttp.request,
    });
    expect(await blockCommands['slot.unblock']!(unblockCommand, availability)).toMatchObject({
      outcome: 'permanent',
    });
    const noId = memoryCommandContext({ config, vendorApi: fetchVendorHttp.request });
    expect(await blockCommands['slot.move_block']!(moveCommand, noId)).toEqual({
      outcome: 'permanent',
      message: 'the block has no Cliniko id at this instance',
    });
    expect(writes(sim)).toEqual([
      'DELETE /v1/unavailable_blocks/42 204',
      'DELETE /v1/unavailable_blocks/42 404',
    ]);
  });
});
