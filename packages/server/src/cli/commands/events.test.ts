/**
 * `switchyard events tail` with a filter that matches none of many events: a page of the events API
 * looks at a bounded number of events and, without a match, answers none and a cursor to go on
 * from (events/store.ts EVENT_LIST_SCAN). The tail must not follow those cursors through every
 * event stored on each poll.
 */
import { expect, it } from 'vitest';
import type { Hub } from '../../pipeline/hub.ts';
import type { CliIO } from '../command.ts';
import { tailEvents } from './events.ts';

/** An events API over sequences 1..head, none matching, each page looking at `scan` of them. */
function unmatchedEvents(head: number, scan: number) {
  const cursors: (number | undefined)[] = [];
  const hub = {
    events: {
      async list(f: { cursor?: string }) {
        const from = f.cursor === undefined ? head + 1 : Number(f.cursor);
        cursors.push(f.cursor === undefined ? undefined : from);
        const stop = from - scan;
        return { items: [], nextCursor: stop > 1 ? String(stop) : null };
      },
    },
  } as unknown as Hub;
  return { hub, cursors };
}

it('follows a filter that matches nothing no further back than its first page looked, poll after poll', async () => {
  const { hub, cursors } = unmatchedEvents(25_000, 10_000);
  const io = { stdout: { write: () => true }, stderr: { write: () => true } } as unknown as CliIO;
  const controller = new AbortController();
  let polls = 0;
  const tail = tailEvents(hub, io, { type: 'gate.*' }, false, controller.signal, 1);
  while (polls < 5) {
    await new Promise((r) => setTimeout(r, 5));
    polls = cursors.filter((c) => c === undefined).length;
  }
  controller.abort();
  await tail;
  // The first page looked at 25,000 down to 15,001: later polls look there and stop.
  expect(Math.min(...cursors.filter((c): c is number => c !== undefined))).toBeGreaterThanOrEqual(15_001);
});
