/**
 * A lost database host, as tests make one on this machine: every packet to and from some of the
 * loopback's TCP ports dropped (`tc`), no reset sent, as when a host loses power or a network
 * partitions. Used by pipeline/session-liveness.int.test.ts (the sessions' keepalive bounds) and
 * storage/unacknowledged.int.test.ts (a statement in flight to a lost host).
 */
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';

/**
 * A classic BPF program for a `tc` filter in direct-action mode: drops (`TC_ACT_SHOT`) every TCP
 * packet from or to one of `ports`, lets the rest through to the next filter (`TC_ACT_UNSPEC`).
 * `tc` runs it on the frame: a 14-byte link header (the loopback's too), then IPv4. A `bpf`
 * filter, because this kernel has no `gact` action module (`action drop`: "Failed to load TC
 * action module"); at ingress, because there the sender's kernel took the packet as sent, as a
 * lost host's network would (a drop at egress reports a local congestion, and TCP does not count
 * its keepalive probes then).
 */
function dropProgram(ports: readonly number[]): string {
  const n = ports.length;
  const pass = 4 + n + 1 + n;
  const drop = pass + 1;
  const ins: [number, number, number, number][] = [
    [0x30, 0, 0, 14 + 9], // A = IP protocol
    [0x15, 0, pass - 2, 6], // TCP, else pass
    [0xb1, 0, 0, 14], // X = IP header length
    [0x48, 0, 0, 14], // A = source port
  ];
  const matches = () => {
    for (const port of ports) ins.push([0x15, drop - ins.length - 1, 0, port]);
  };
  matches();
  ins.push([0x48, 0, 0, 14 + 2]); // A = destination port
  matches();
  ins.push([0x06, 0, 0, 0xffffffff], [0x06, 0, 0, 2]);
  return `${ins.length},${ins.map((i) => i.join(' ')).join(',')}`;
}

const tc = (...args: string[]) => execFileSync('tc', args, { encoding: 'utf8', stdio: 'pipe' });

/**
 * Drops every packet to and from `ports` on the loopback, as a lost host (its packets and the
 * replies to it vanish, no reset), with a filter on the loopback's ingress (a `clsact` qdisc,
 * which leaves the loopback's queueing as it was) matching only those ports; the returned function
 * removes exactly that filter, and the qdisc if this added it and no other filter is left (once:
 * a second call does nothing).
 */
export function partition(ports: readonly number[]): () => void {
  const added = !tc('qdisc', 'show', 'dev', 'lo').includes('clsact');
  if (added) tc('qdisc', 'add', 'dev', 'lo', 'clsact');
  const pref = String(40_000 + randomInt(10_000));
  let removed = false;
  const remove = () => {
    // Once: a test heals the cut, and its cleanup would heal it again.
    if (removed) return;
    removed = true;
    try {
      tc('filter', 'del', 'dev', 'lo', 'ingress', 'pref', pref);
    } catch {
      // not added
    }
    const left = tc('filter', 'show', 'dev', 'lo', 'ingress') + tc('filter', 'show', 'dev', 'lo', 'egress');
    if (added && left.trim() === '') tc('qdisc', 'del', 'dev', 'lo', 'clsact');
  };
  try {
    tc(
      'filter',
      'add',
      'dev',
      'lo',
      'ingress',
      'pref',
      pref,
      'protocol',
      'ip',
      'bpf',
      'bytecode',
      dropProgram(ports),
      'da',
    );
  } catch (error) {
    remove();
    throw error;
  }
  return remove;
}

/**
 * Why the lost-host case cannot run here, or undefined when it can: it needs `tc`, CAP_NET_ADMIN,
 * a kernel with `clsact` and `bpf` filters, and the test Postgres on this host's loopback.
 */
export function lostHostUnavailable(): string | undefined {
  const url = process.env.DATABASE_URL;
  if (url === undefined)
    return 'needs DATABASE_URL to a Postgres on the loopback (the harness may use a container)';
  if (!['127.0.0.1', 'localhost'].includes(new URL(url).hostname))
    return 'the test Postgres is not on the loopback';
  try {
    // A filter that drops nothing (no port 0 traffic), added and removed.
    partition([0])();
  } catch (error) {
    return `tc cannot filter the loopback here (${String((error as Error).message).split('\n')[0]})`;
  }
  return undefined;
}
