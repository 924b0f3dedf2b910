/**
 * The bench's `switchyard start` harness: the real CLI on a written config, default logging to a
 * file, a push reaching the subscriber through every role, and the figures the scenarios read.
 */

import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../../packages/testing/src/index.ts';
import { startCliHub } from './cli-hub.ts';
import { pushBody } from './docplanner.ts';
import { closeAgent, pushOnce } from './load.ts';
import { waitUntil } from './result.ts';
import { startFastSubscriber } from './subscriber.ts';

const db = useTestDatabase();

describe('startCliHub', () => {
  it('runs switchyard start as users do and delivers a push', { timeout: 180_000 }, async () => {
    const subscriber = await startFastSubscriber({ track: true });
    const hub = await startCliHub({ databaseUrl: db.url(), subscribers: [subscriber.url] });
    try {
      expect(hub.pids()[0]).toBeGreaterThan(0);
      const requestLines = hub.requestLogLines();
      expect(await pushOnce(hub.port, pushBody(7, 9))).toBe(200);
      await waitUntil(() => subscriber.arrivals.has(7), 'the delivery', 120_000, 20);
      // Default logging (info): no line per request (one per request at debug, docs/operations.md).
      expect(hub.requestLogLines()).toBe(requestLines);
      expect(hub.logLines()).toBeGreaterThan(0);
      expect(hub.logLines()).toBeGreaterThanOrEqual(hub.requestLogLines());
      expect(hub.peakRss()).toBeGreaterThan(10 * 1024 * 1024);
    } finally {
      closeAgent();
      await hub.stop();
      await subscriber.close();
    }
  });
});
