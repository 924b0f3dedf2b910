/**
 * Command overhead: from a command accepted (`commands.accept`, the work of `POST /v1/commands`:
 * checks, row + job in one transaction) to the vendor simulator receiving the vendor call, one at a
 * time. Baseline, same run: a direct call to the same simulator endpoint (token already held), from
 * the request's start to its arrival. The command is `appointment.mark_arrived` on one Docplanner
 * appointment (idempotent at the vendor, so it can be repeated).
 *
 * Runs on its own: `DATABASE_URL=postgres://… node bench/commands.ts [--quick]`.
 */
import { performance } from 'node:perf_hooks';
import { docplannerConnector } from '../packages/connectors/docplanner/src/index.ts';
import { DocplannerSimulator } from '../packages/connectors/docplanner/src/simulator.ts';
import { createCommands } from '../packages/server/src/commands/commands.ts';
import { createHub } from '../packages/server/src/pipeline/hub.ts';
import { createTestDatabase } from '../packages/testing/src/postgres/databases.ts';
import { pino } from './lib/deps.ts';
import { type BenchOptions, type BenchResult, percentile, row } from './lib/result.ts';

const API_KEY = 'bench-commands-push-key';
const PLACE = { facility: { id: '1' }, doctor: { id: '2' }, address: { id: '3' } };

export async function run(options: Partial<BenchOptions> = {}): Promise<BenchResult> {
  const quick = options.quick ?? false;
  const log = options.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const samples = quick ? 50 : 300;
  const warmup = quick ? 10 : 50;
  const database = await createTestDatabase({
    ...(options.adminUrl ? { adminUrl: options.adminUrl } : {}),
    prefix: 'sy_bench_commands_',
  });
  const sim = new DocplannerSimulator();
  await sim.start();
  sim.writes.echoes = false;
  const commands = createCommands({ sweepIntervalMs: 0 });
  const hub = await createHub({
    databaseUrl: database.url,
    connectors: [docplannerConnector],
    secretKey: 'bench-secret-key-0123456789abcdef',
    logger: pino({ level: 'silent' }),
    options: { retention: { cron: false } },
    ...commands.hooks,
  });
  try {
    await hub.start();
    await commands.start(hub.host);
    await hub.instances.upsert({
      id: 'dp-bench',
      connector: 'docplanner',
      mode: 'push',
      settings: {
        apiBaseUrl: sim.url,
        clientId: 'sim-client',
        clientSecret: 'sim-secret',
        pushAuth: { apiKey: API_KEY },
      },
    });
    const booking = { id: '777', status: 'booked', start_at: '2026-05-01T10:00:00+02:00', duration: 20 };
    const body = {
      name: 'slot-booked',
      data: { ...PLACE, visit_booking: booking },
      created_at: '2026-03-02T09:14:05+01:00',
    };
    sim.writes.addBooking({ facility: '1', doctor: '2', address: '3' }, booking);
    await hub.ingest('dp-bench', {
      route: 'default',
      params: {},
      query: {},
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': API_KEY },
      rawBody: Buffer.from(JSON.stringify(body)),
      sourceIp: '127.0.0.1',
      receivedAt: new Date(),
    });
    let subject: string | undefined;
    for (let i = 0; i < 500 && !subject; i++) {
      subject = (await hub.events.list({ type: 'appointment.created', limit: 1 })).items[0]?.subject;
      if (!subject) await new Promise((r) => setTimeout(r, 10));
    }
    if (!subject) throw new Error('the appointment was not normalized');

    let arrived: (() => void) | undefined;
    sim.writes.onRequest = () => arrived?.();
    const arrival = () => new Promise<void>((resolve) => (arrived = resolve));
    const viaHub = async (): Promise<number> => {
      const reached = arrival();
      const started = performance.now();
      const { command } = await commands.accept(
        { kind: 'admin' },
        { type: 'appointment.mark_arrived', subject, data: {} },
      );
      await reached;
      const ms = performance.now() - started;
      // Wait for the outcome to be stored before the next one (one at a time, in order).
      for (;;) {
        const c = await commands.get({ kind: 'admin' }, command.id);
        if (c.status === 'succeeded') break;
        if (c.status === 'failed') throw new Error(`command failed: ${JSON.stringify(c.error)}`);
        await new Promise((r) => setTimeout(r, 2));
      }
      return ms;
    };
    const tokenRes = await fetch(`${sim.url}/oauth/v2/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('sim-client:sim-secret').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials&scope=integration',
    });
    const token = ((await tokenRes.json()) as { access_token: string }).access_token;
    const direct = async (): Promise<number> => {
      const reached = arrival();
      const started = performance.now();
      const res = fetch(
        `${sim.url}/api/v3/integration/facilities/1/doctors/2/addresses/3/bookings/777/presence/patient`,
        {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        },
      );
      await reached;
      const ms = performance.now() - started;
      await (await res).arrayBuffer();
      return ms;
    };

    log(`commands: warming up (${warmup} each)`);
    for (let i = 0; i < warmup; i++) {
      await direct();
      await viaHub();
    }
    log(`commands: ${samples} commands one at a time, interleaved with direct calls`);
    const hubMs: number[] = [];
    const directMs: number[] = [];
    for (let i = 0; i < samples; i++) {
      directMs.push(await direct());
      hubMs.push(await viaHub());
    }
    const base = {
      unit: 'ms',
      baselineLabel: 'direct call to the vendor simulator',
      higherIsBetter: false,
    } as const;
    return {
      name: 'Command overhead',
      rows: [
        row('Command accepted → vendor call p50', percentile(hubMs, 0.5), percentile(directMs, 0.5), base),
        row('Command accepted → vendor call p99', percentile(hubMs, 0.99), percentile(directMs, 0.99), {
          ...base,
          target: { kind: 'max', value: 50, label: '< 50 ms' },
        }),
      ],
      notes: [
        `${samples} appointment.mark_arrived commands one at a time on one Docplanner appointment; hub, commands worker and simulator in one process.`,
        'Measured from the call to accept (checks, command row and pg-boss job in one transaction) to the request reaching the simulator: the commit, the job wake-up (LISTEN/NOTIFY), the claim, the handler (token from the state store) and the HTTP call.',
      ],
    };
  } finally {
    await commands.stop();
    await hub.stop();
    await sim.close();
    await database.drop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await run({ quick: process.argv.includes('--quick') });
  for (const r of result.rows) {
    console.log(
      `${r.metric.padEnd(40)} ${r.value.toFixed(2).padStart(8)} ms   baseline ${r.baseline?.toFixed(2) ?? '-'} ms   ratio ${r.ratio?.toFixed(2) ?? '-'}`,
    );
  }
  for (const note of result.notes ?? []) console.log(`  ${note}`);
}
