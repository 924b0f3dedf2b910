/**
 * `switchyard events tail` with a filter that matches none of many events: a page of the events API
 * looks at a bounded number of events and, without a match, answers none and a cursor to go on
 * from (events/store.ts EVENT_LIST_SCAN). The tail must not follow those cursors through every
 * event stored on each poll.
 */
import { expect, it } from 'vitest';
import type { Hub } from '../../pipeline/hub.ts';
import type { CliIO } from '../command.ts';
import { latestEvents, tailEvents } from './events.ts';

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
  // The first screen looked for the last ten matches through every page, once. Its first page
  // looked at 25,000 down to 15,001: later polls look there and stop.
  const later = cursors.slice(cursors.indexOf(undefined, 1));
  expect(Math.min(...later.filter((c): c is number => c !== undefined))).toBeGreaterThanOrEqual(15_001);
  expect(cursors.slice(0, cursors.indexOf(undefined, 1))).toEqual([undefined, 15_001, 5_001]);
});

/** An events API over sequences 1..head, matching those in `matching`, each page looking at `scan`. */
function sparseEvents(head: number, scan: number, matching: readonly number[]) {
  let pages = 0;
  const hub = {
    events: {
      async list(f: { cursor?: string; limit: number }) {
        pages++;
        const from = f.cursor === undefined ? head + 1 : Number(f.cursor);
        const items: { sequence: string }[] = [];
        let seq = from - 1;
        for (; seq >= Math.max(1, from - scan) && items.length < f.limit; seq--)
          if (matching.includes(seq)) items.push({ sequence: String(seq) });
        const next = items.length === f.limit ? Number(items.at(-1)!.sequence) : seq + 1;
        return { items, nextCursor: next > 1 ? String(next) : null };
      },
    },
  } as unknown as Hub;
  return { hub, pages: () => pages };
}

it('events list --limit: goes on past pages that looked at their bound without filling up, and stops at the limit or the end', async () => {
  // Three matches, 12,000 and 31,000 events back: the first page (10,000 events) finds none.
  const { hub, pages } = sparseEvents(40_000, 10_000, [28_000, 9_000, 8_999]);
  const all = await latestEvents(hub, { type: 'gate.*' }, 50);
  expect(all.map((e) => e.sequence)).toEqual(['28000', '9000', '8999']);
  const two = await latestEvents(hub, { type: 'gate.*' }, 2);
  expect(two.map((e) => e.sequence)).toEqual(['28000', '9000']);
  expect(pages()).toBeGreaterThan(2);
});
