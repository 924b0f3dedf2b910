/**
 * The LISTEN connection silently lost (its packets dropped, no FIN or RST: a failover, a dropped
 * NAT entry) while the database itself stays reachable: the listener's own check finds it and
 * reconnects, well before TCP keepalive would (30 s idle, then ten probes: measured 42 s).
 */
import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { lostHostUnavailable, partition } from '../storage/partition.test-support.ts';
import { socketOf } from '../storage/unacknowledged.ts';
import { HubListener } from './listener.ts';

const database = useTestDatabase();
const unavailable = lostHostUnavailable();
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function until(condition: () => boolean, boundMs: number): Promise<boolean> {
  const start = Date.now();
  while (!condition() && Date.now() - start < boundMs) await new Promise((r) => setTimeout(r, 100));
  return condition();
}

it.skipIf(unavailable !== undefined)(
  `reconnects a LISTEN connection gone silent, before keepalive would notice${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  async () => {
    const lines: Array<{ level: number; msg: string; dbError?: { code?: string } }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // Short bounds, the answer's still generous for a loaded machine: a cut found within 5.5 s.
    const l = new HubListener(database.url(), logger, undefined, { everyMs: 500, answerWithinMs: 5_000 });
    cleanups.push(() => l.stop());
    const heard: (string | undefined)[] = [];
    await l.listen('sy_test_silent', (payload) => heard.push(payload));
    await l.start();
    expect(heard).toEqual([undefined]);
    const notifier = new pg.Client({ connectionString: database.url() });
    await notifier.connect();
    cleanups.push(() => notifier.end());
    const notify = (payload: string) => notifier.query(`select pg_notify('sy_test_silent', $1)`, [payload]);

    // Heard while the connection is up, also after checks have run on it.
    await new Promise((r) => setTimeout(r, 1_500));
    await notify('before');
    expect(await until(() => heard.length >= 2, 20_000)).toBe(true);
    expect(heard).toEqual([undefined, 'before']);

    const cut = socketOf((l as unknown as { client: pg.Client }).client)!.localPort!;
    cleanups.push(partition([cut]));
    // Lost with the connection: the reconnect's wake-up (no payload) covers it.
    await notify('during');
    // TCP keepalive starts probing after 30 s of silence: a reconnect within 20 s is the check's.
    expect(await until(() => heard.length >= 3, 20_000)).toBe(true);
    expect(heard).toEqual([undefined, 'before', undefined]);
    expect(l.listening).toBe(true);
    const now = socketOf((l as unknown as { client: pg.Client }).client)!.localPort!;
    expect(now).not.toBe(cut);
    // Said as the lost connection it is, once.
    const lost = lines.filter(
      (x) => x.dbError?.code === 'ETIMEDOUT' && /LISTEN connection is lost/.test(x.msg),
    );
    expect(lost.map((x) => x.level)).toEqual([40]);
    await notify('after');
    expect(await until(() => heard.length >= 4, 20_000)).toBe(true);
    expect(heard[3]).toBe('after');
  },
  60_000,
);
