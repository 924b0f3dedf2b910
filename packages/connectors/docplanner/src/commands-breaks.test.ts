import type { CommandContext, CommandRequest, JsonObject } from '@switchyard/core';
import { capturingLogger, fetchVendorHttp, MemoryStateStore } from '@switchyard/testing';
import { startHookReceiver } from '@switchyard/testing/simulator-kit/receiver';
import { afterEach, describe, expect, it } from 'vitest';
import { breakCommands } from './commands-breaks.ts';
import type { Config } from './config.ts';
import { docplannerConnector } from './index.ts';
import { DocplannerSimulator } from './simulator.ts';

const PLACE = { facility: '90211', doctor: '182733', address: '221304' };
const BASE = `/facilities/${PLACE.facility}/doctors/${PLACE.doctor}/addresses/${PLACE.address}`;
/** A block's known state, as the hub has it from Docplanner's break-created (normalize.ts). */
const CURRENT: JsonObject = {
  id: 'slot-1',
  vendorIds: [],
  kind: 'block',
  status: 'busy-unavailable',
  start: '2026-03-11T13:00:00+01:00',
  end: '2026-03-11T14:00:00+01:00',
  organization: { id: PLACE.facility },
  practitioner: { id: PLACE.doctor },
  location: { id: PLACE.address },
};
const BLOCK = {
  start: '2026-03-11T13:00:00+01:00',
  end: '2026-03-11T14:00:00+01:00',
  organization: { id: PLACE.facility },
  practitioner: { id: PLACE.doctor },
  location: { id: PLACE.address },
  reason: 'staff meeting',
};

const sims: DocplannerSimulator[] = [];
afterEach(async () => {
  while (sims.length > 0) await sims.pop()!.close();
});

async function setup() {
  const sim = new DocplannerSimulator({ clientId: 'dp-client', clientSecret: 'dp-secret' });
  sims.push(sim);
  const url = await sim.start();
  sim.writes.echoes = false;
  const state = new MemoryStateStore();
  const commandState = new MemoryStateStore();
  const ctx = (over: Partial<CommandContext<Config>> = {}): CommandContext<Config> => ({
    instanceId: 'dp',
    config: { apiBaseUrl: url, clientId: 'dp-client', clientSecret: 'dp-secret' },
    http: fetchVendorHttp,
    vendorIds: [],
    state,
    commandState,
    logger: capturingLogger(),
    attempt: 1,
    ...over,
  });
  return { sim, ctx };
}

function cmd<T extends CommandRequest['type']>(type: T, data: object, id = `cmd-${Math.random()}`) {
  return {
    id,
    type,
    ...(type === 'slot.block' ? {} : { subject: 'slot/slot-1' }),
    data,
  } as unknown as CommandRequest<T>;
}

const inPlace = (sim: DocplannerSimulator) => [...sim.writes.breaks.all.values()].filter((b) => !b.removed);

describe('Docplanner calendar-block commands against the simulator', () => {
  it('block: POST …/breaks with since, till and the reason as description; done with the break id', async () => {
    const { sim, ctx } = await setup();
    const r = await breakCommands['slot.block']!(cmd('slot.block', BLOCK), ctx());
    const made = inPlace(sim);
    expect(made).toHaveLength(1);
    expect(r).toMatchObject({ outcome: 'done', vendorIds: [made[0]!.id], vendor: { status: 201 } });
    expect(sim.writes.log).toEqual([
      {
        method: 'POST',
        path: `${BASE}/breaks`,
        body: { since: BLOCK.start, till: BLOCK.end, description: 'staff meeting' },
        status: 201,
      },
    ]);
  });

  it('block whose answer was lost: the next try finds the break among the address breaks, and sends nothing', async () => {
    const { sim, ctx } = await setup();
    sim.writes.loseAnswers(1, 502);
    const command = cmd('slot.block', BLOCK);
    const first = await breakCommands['slot.block']!(command, ctx());
    expect(first).toMatchObject({ outcome: 'transient', vendor: { status: 502 } });
    expect(first.outcome === 'transient' && first.message).toMatch(/looks for the break/);
    const second = await breakCommands['slot.block']!(command, ctx({ attempt: 2 }));
    expect(inPlace(sim)).toHaveLength(1);
    expect(second).toMatchObject({ outcome: 'done', alreadyDone: true, vendorIds: [inPlace(sim)[0]!.id] });
    // One POST; the second try only listed.
    expect(sim.writes.log.map((w) => w.method)).toEqual(['POST']);
    expect(
      sim.served.some(
        (s) => s.method === 'GET' && s.path.startsWith(`/api/v3/integration${BASE}/breaks?since=`),
      ),
    ).toBe(true);
    // A third try (the hub's work after the done failed) answers the record, no call.
    const calls = sim.served.length;
    expect(await breakCommands['slot.block']!(command, ctx({ attempt: 3 }))).toMatchObject({
      outcome: 'done',
      vendorIds: [inPlace(sim)[0]!.id],
    });
    expect(sim.served.length).toBe(calls);
  });

  it('block answered a 5xx that did nothing: not sent again before the settle time, only looked for', async () => {
    const { sim, ctx } = await setup();
    sim.failNext(1, 503, undefined, /\/breaks$/);
    const command = cmd('slot.block', BLOCK);
    expect(await breakCommands['slot.block']!(command, ctx())).toMatchObject({ outcome: 'transient' });
    const second = await breakCommands['slot.block']!(command, ctx({ attempt: 2 }));
    expect(second).toMatchObject({ outcome: 'transient' });
    expect(second.outcome === 'transient' && second.message).toMatch(
      /do not list it yet.*blocked again only when still not there 120 s after it went out/,
    );
    expect(inPlace(sim)).toHaveLength(0);
    expect(sim.writes.log).toHaveLength(0);
  });

  it("block refused by Docplanner (the same span and description exists): permanent with Docplanner's words", async () => {
    const { sim, ctx } = await setup();
    sim.writes.breaks.add(PLACE, BLOCK.start, BLOCK.end, 'staff meeting');
    const r = await breakCommands['slot.block']!(cmd('slot.block', BLOCK), ctx());
    expect(r).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('Break for given address, date range and description exists'),
      vendor: { status: 409 },
    });
    expect(inPlace(sim)).toHaveLength(1);
  });

  it('a block without its place or with its end before its start is refused when sent', () => {
    const unsupported = docplannerConnector.commandUnsupported!;
    const config = { apiBaseUrl: 'https://dp.test', clientId: 'c', clientSecret: 's' };
    expect(unsupported({ type: 'slot.block', data: { start: BLOCK.start, end: BLOCK.end } }, config)).toBe(
      'Docplanner blocks a calendar only with organization.id (facility), practitioner.id (doctor), location.id (address)',
    );
    expect(
      unsupported({ type: 'slot.move_block', data: { start: BLOCK.end, end: BLOCK.start } }, config),
    ).toMatch(/must be after its start/);
    expect(unsupported({ type: 'slot.block', data: BLOCK }, config)).toBeUndefined();
  });

  it('move: PATCH the break; a repeated move (its answer lost) is refused "Same Date Range", re-read, done', async () => {
    const { sim, ctx } = await setup();
    const b = sim.writes.breaks.add(PLACE, BLOCK.start, BLOCK.end);
    const to = { start: '2026-03-11T15:00:00+01:00', end: '2026-03-11T16:00:00+01:00' };
    sim.writes.loseAnswers(1, 502);
    const command = cmd('slot.move_block', to);
    const on = ctx({ vendorIds: [b.id], current: CURRENT });
    expect(await breakCommands['slot.move_block']!(command, on)).toMatchObject({ outcome: 'transient' });
    expect(b).toMatchObject({ since: to.start, till: to.end });
    expect(await breakCommands['slot.move_block']!(command, on)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendor: { status: 422, body: { message: 'Same Date Range' } },
    });
    expect(sim.writes.log.map((w) => `${w.method} ${w.status}`)).toEqual(['PATCH 502', 'PATCH 422']);
  });

  it('unblock: DELETE the break; one Docplanner no longer has (404) is done', async () => {
    const { sim, ctx } = await setup();
    const b = sim.writes.breaks.add(PLACE, BLOCK.start, BLOCK.end);
    const on = ctx({ vendorIds: [b.id], current: CURRENT });
    expect(await breakCommands['slot.unblock']!(cmd('slot.unblock', {}), on)).toMatchObject({
      outcome: 'done',
      vendor: { status: 204 },
    });
    expect(inPlace(sim)).toHaveLength(0);
    expect(await breakCommands['slot.unblock']!(cmd('slot.unblock', {}), on)).toMatchObject({
      outcome: 'done',
      alreadyDone: true,
      vendor: { status: 404, body: { message: 'Invalid break ID' } },
    });
  });

  it('a move or unblock of a block whose place the hub does not know, or of a slot that is no block, fails without a call', async () => {
    const { sim, ctx } = await setup();
    const on = ctx({ vendorIds: ['8000001'] });
    expect(await breakCommands['slot.unblock']!(cmd('slot.unblock', {}), on)).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('does not know this block'),
    });
    expect(sim.served).toHaveLength(0);
    // A doctor's availability (slot-changed) is a slot too, but no break: not "removed already".
    const availability = ctx({
      vendorIds: ['availability:182733:221304'],
      current: { ...CURRENT, kind: 'availability' },
    });
    expect(await breakCommands['slot.unblock']!(cmd('slot.unblock', {}), availability)).toMatchObject({
      outcome: 'permanent',
      message: expect.stringContaining('not a calendar block'),
    });
    expect(sim.served).toHaveLength(0);
  });

  it('echoes: break-created, break-moved (the new times), break-removed, each with facility, doctor and address', async () => {
    const { sim, ctx } = await setup();
    const hook = await startHookReceiver({
      path: '/hooks/dp',
      answers: [{ status: 200 }],
      whenDone: 'repeat',
    });
    try {
      sim.writes.echoes = true;
      sim.writes.echoDelayMs = 0;
      sim.writes.hookUrl = hook.url;
      const made = await breakCommands['slot.block']!(cmd('slot.block', BLOCK), ctx());
      const id = made.outcome === 'done' ? made.vendorIds![0]! : '';
      const on = ctx({ vendorIds: [id], current: CURRENT });
      const to = { start: '2026-03-11T15:00:00+01:00', end: '2026-03-11T16:00:00+01:00' };
      await breakCommands['slot.move_block']!(cmd('slot.move_block', to), on);
      await breakCommands['slot.unblock']!(cmd('slot.unblock', {}), on);
      await expect.poll(() => hook.received.length).toBe(3);
      const bodies = hook.received.map((r) => JSON.parse(r.body) as JsonObject);
      expect(bodies.map((b) => b.name)).toEqual(['break-created', 'break-moved', 'break-removed']);
      expect(bodies.map((b) => (b.data as JsonObject).break)).toEqual([
        { id, since: BLOCK.start, till: BLOCK.end },
        { id, since: to.start, till: to.end },
        { id, since: to.start, till: to.end },
      ]);
      expect(bodies[0]!.data).toMatchObject({
        facility: { id: PLACE.facility },
        doctor: { id: PLACE.doctor },
        address: { id: PLACE.address },
      });
    } finally {
      await hook.close();
    }
  });
});
