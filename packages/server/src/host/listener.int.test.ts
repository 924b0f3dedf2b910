import { useTestDatabase } from '@switchyard/testing';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HubListener } from './listener.ts';

const database = useTestDatabase();
let client: pg.Client;
const listeners: HubListener[] = [];

beforeAll(async () => {
  client = new pg.Client({ connectionString: database.url() });
  await client.connect();
});

afterEach(async () => {
  await Promise.all(listeners.splice(0).map((l) => l.stop()));
});

afterAll(async () => {
  await client?.end();
});

function listener(): HubListener {
  const l = new HubListener(database.url(), pino({ level: 'silent' }));
  listeners.push(l);
  return l;
}

/** A handler recording what it heard, with a way to wait for the next call. */
function recorder() {
  const heard: (string | undefined)[] = [];
  let waiting: (() => void) | undefined;
  const handler = (payload: string | undefined) => {
    heard.push(payload);
    waiting?.();
  };
  const next = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`heard ${JSON.stringify(heard)}, wanted ${count}`)),
        20_000,
      );
      const check = () => {
        if (heard.length >= count) {
          clearTimeout(timer);
          waiting = undefined;
          resolve();
        }
      };
      waiting = check;
      check();
    });
  return { heard, handler, next };
}

const notify = (channel: string, payload: string) =>
  client.query('select pg_notify($1, $2)', [channel, payload]);

describe('HubListener', () => {
  it('runs the handlers of a channel with each payload, and once with none when it connects', async () => {
    const l = listener();
    const a = recorder();
    const b = recorder();
    const other = recorder();
    await l.listen('sy_test_a', a.handler);
    await l.listen('sy_test_a', b.handler);
    await l.listen('sy_test_other', other.handler);
    expect(l.listening).toBe(false);
    await l.start();
    expect(l.listening).toBe(true);
    // Connected: work committed while nobody listened may have been missed, so every handler runs.
    expect(a.heard).toEqual([undefined]);
    await notify('sy_test_a', '{"id":"g1"}');
    await Promise.all([a.next(2), b.next(2)]);
    expect(a.heard).toEqual([undefined, '{"id":"g1"}']);
    expect(b.heard).toEqual([undefined, '{"id":"g1"}']);
    expect(other.heard).toEqual([undefined]);
  });

  it('listens to a channel added after it started, and a removed handler hears nothing more', async () => {
    const l = listener();
    await l.start();
    const late = recorder();
    const stays = recorder();
    const unlisten = await l.listen('sy_test_late', late.handler);
    await l.listen('sy_test_late', stays.handler);
    await notify('sy_test_late', 'one');
    await Promise.all([late.next(1), stays.next(1)]);
    unlisten();
    await notify('sy_test_late', 'two');
    await stays.next(2);
    expect(late.heard).toEqual(['one']);
    expect(stays.heard).toEqual(['one', 'two']);
  });

  it('reconnects when its connection is killed, telling handlers they may have missed notifications', async () => {
    const l = listener();
    const r = recorder();
    await l.listen('sy_test_reconnect', r.handler);
    await l.start();
    await r.next(1);
    await client.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
       where datname = current_database() and pid <> pg_backend_pid() and query like 'LISTEN%'`,
    );
    // Back after about a second: the handler is told (no payload), and hears the channel again.
    await r.next(2);
    expect(r.heard[1]).toBeUndefined();
    expect(l.listening).toBe(true);
    await notify('sy_test_reconnect', 'after');
    await r.next(3);
    expect(r.heard[2]).toBe('after');
  });

  it('runs nothing after stop', async () => {
    const l = listener();
    const r = recorder();
    await l.listen('sy_test_stop', r.handler);
    await l.start();
    await r.next(1);
    await l.stop();
    expect(l.listening).toBe(false);
    // Another listener hears the notification: by then the stopped one would have heard it too.
    const witness = listener();
    const w = recorder();
    await witness.listen('sy_test_stop', w.handler);
    await witness.start();
    await notify('sy_test_stop', 'late');
    await w.next(2);
    expect(r.heard).toEqual([undefined]);
  });
});

describe('HubListener while the database refuses connections', () => {
  it('warns once per 30 s, not with a stack every second it tries again', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    // Nothing listens on port 1: every connection attempt is refused (ECONNREFUSED), each second.
    const l = new HubListener('postgres://postgres@127.0.0.1:1/none', logger);
    listeners.push(l);
    await l.start();
    await new Promise((resolve) => setTimeout(resolve, 3_500));
    const tries = lines.filter((x) => /LISTEN connection failed/.test(x.msg));
    expect(tries.length).toBeGreaterThanOrEqual(3);
    expect(tries.filter((x) => x.level >= 40).length).toBeLessThanOrEqual(1);
  });
});
