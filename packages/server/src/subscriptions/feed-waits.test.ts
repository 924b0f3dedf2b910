/**
 * The long-polls of one process (feed-waits.ts) without a database: which NOTIFY payload wakes
 * whom, a wake-up that arrives between a read and the wait, the bound, and the process closing.
 */
import { isSwitchyardError } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { HttpError } from '../admin/http.ts';
import { CHANNEL_FEED } from '../storage/queues.ts';
import { FeedWaits } from './feed-waits.ts';

/** FeedWaits with a fake LISTEN: `heard` plays a NOTIFY on the channel it listened to. */
function waits(max = 10, perSubscription?: number) {
  const channels: string[] = [];
  let handler: ((payload: string | undefined) => void) | undefined;
  const w = new FeedWaits(
    async (channel, h) => {
      channels.push(channel);
      handler = h;
    },
    max,
    perSubscription,
  );
  return { w, channels, heard: (payload: string | undefined) => handler?.(payload) };
}

const never = new AbortController().signal;

describe('FeedWaits', () => {
  it('listens once, at the first wait, and wakes only the subscriptions a payload names', async () => {
    const { w, channels, heard } = waits();
    expect(channels).toEqual([]);
    const a = await w.enter('erp');
    const b = await w.enter('crm');
    expect(channels).toEqual([CHANNEL_FEED]);
    const pa = a.next(5000, never);
    const pb = b.next(50, never);
    heard('erp,warehouse');
    expect(await pa).toBe('woken');
    expect(await pb).toBe('timeout');
    a.leave();
    b.leave();
    expect(w.waiting).toBe(0);
  });

  it("wakes every wait on '' (too many ids to list) and on a reconnect (undefined)", async () => {
    const { w, heard } = waits();
    for (const payload of ['', undefined]) {
      const a = await w.enter('erp');
      const b = await w.enter('crm');
      const both = Promise.all([a.next(5000, never), b.next(5000, never)]);
      heard(payload);
      expect(await both).toEqual(['woken', 'woken']);
      a.leave();
      b.leave();
    }
  });

  it('keeps a wake-up that arrives before the wait (between a read and it): the next wait returns at once', async () => {
    const { w, heard } = waits();
    const a = await w.enter('erp');
    heard('erp');
    const started = Date.now();
    expect(await a.next(5000, never)).toBe('woken');
    expect(Date.now() - started).toBeLessThan(100);
    // Used up: the next one waits again.
    expect(await a.next(30, never)).toBe('timeout');
    a.leave();
  });

  it('ends a wait when its signal aborts or the process closes, and later ones at once', async () => {
    const { w } = waits();
    const reader = new AbortController();
    const a = await w.enter('erp');
    const pa = a.next(5000, reader.signal);
    reader.abort();
    expect(await pa).toBe('ended');
    a.leave();
    const b = await w.enter('erp');
    const pb = b.next(5000, never);
    w.close();
    expect(await pb).toBe('ended');
    b.leave();
    const c = await w.enter('erp');
    expect(await c.next(5000, never)).toBe('ended');
    c.leave();
  });

  it('refuses one wait beyond the bound with 503 SY_HTTP_FEED_WAITERS_FULL and Retry-After; a place given back is free again', async () => {
    const { w } = waits(2);
    const a = await w.enter('erp');
    await w.enter('erp');
    const refused = await w.enter('crm').catch((error: unknown) => error);
    expect(isSwitchyardError(refused) && refused.code).toBe('SY_HTTP_FEED_WAITERS_FULL');
    expect((refused as HttpError).headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(refused).toBeInstanceOf(HttpError);
    a.leave();
    a.leave(); // twice: counted once
    expect(w.waiting).toBe(1);
    await w.enter('crm');
    expect(w.waiting).toBe(2);
  });

  it("refuses a subscription's wait beyond its share with 503, the others' still waiting", async () => {
    // One reader's credential (a loop, a hostile subscriber) took every place of the process, and
    // every other subscription's long-polls were refused while it held them.
    const { w } = waits(10, 2);
    const held = [await w.enter('erp'), await w.enter('erp')];
    const refused = await w.enter('erp').catch((error: unknown) => error);
    expect(isSwitchyardError(refused) && refused.code).toBe('SY_HTTP_FEED_WAITERS_FULL');
    expect((refused as HttpError).message).toContain('of this subscription');
    expect((refused as HttpError).headers['retry-after']).toMatch(/^[1-9][0-9]*$/);
    expect(w.waiting).toBe(2);
    await w.enter('crm');
    expect(w.waiting).toBe(3);
    held[0]!.leave();
    await w.enter('erp');
    expect(w.waiting).toBe(3);
  });
});
