import type { HubRole } from '../../runtime/process.ts';
import { type Command, configOption, UsageError } from '../command.ts';

/** How long a stopped process may linger on stray handles before it is ended. */
const EXIT_GRACE_MS = 3000;

/** The signals that stop the hub gracefully (a second one exits at once). */
const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;

/** Output errors meaning the terminal or the reader is gone; any other is thrown as before. */
function ignoreLostOutput(error: NodeJS.ErrnoException): void {
  if (!['EIO', 'EPIPE', 'ERR_STREAM_DESTROYED'].includes(error.code ?? '')) throw error;
}

/**
 * `switchyard start`: runs the hub until SIGTERM, SIGINT or SIGHUP, then stops gracefully (exit 0).
 * Exit 1 when the config has problems or the hub cannot start.
 */
export const startCommand: Command = {
  name: 'start',
  summary: 'run the hub: HTTP (vendor hooks, admin API, pull feed) and the workers',
  usage: '[--config FILE] [--role all|http|worker] [--port PORT]',
  details: [
    'Options:',
    '  -c, --config FILE   the config file (default: $SWITCHYARD_CONFIG, else ./switchyard.yaml, else',
    '                      examples/switchyard.yaml of a source checkout)',
    '  --role ROLE         all (default): HTTP and workers; http: hooks, admin API and pull feed only;',
    '                      worker: normalize, deliver, pull, run commands and cleanup only (serves',
    '                      /healthz, /readyz and /metrics)',
    '  --port PORT         listen on this port instead of server.port (several processes on one machine)',
    '',
    'Without database.url or DATABASE_URL the hub runs an embedded Postgres, data in',
    'database.embedded.dataDir (default ./.switchyard/postgres next to the config file). With a URL, a',
    'database that does not accept connections yet is waited for up to database.startupWait (default 60s).',
    'SIGTERM, SIGINT or SIGHUP stops it gracefully: no new requests, in-flight requests and jobs finish.',
  ].join('\n'),
  options: { ...configOption, role: { type: 'string' }, port: { type: 'string' } },
  async run(args, io) {
    // Loaded on use: `switchyard validate` should not pay for the HTTP stack and the pipeline.
    const { ConfigError } = await import('../../config/errors.ts');
    const { createLogger, secretScrubber } = await import('../../logging/logger.ts');
    const { loadForCommand, reportProblems } = await import('../hub.ts');
    const { ROLES, startHubProcess } = await import('../../runtime/process.ts');
    const { DatabaseWaitExpired, StoppedWhileWaiting } = await import('../../runtime/database.ts');
    const role = (args.values.role ?? 'all') as HubRole;
    if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
    let port: number | undefined;
    if (args.values.port !== undefined) {
      port = Number(args.values.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError('--port must be an integer 0..65535');
    }
    const loaded = await loadForCommand(args, io);
    if (typeof loaded === 'number') return loaded;
    const { config, secrets, shown } = loaded;
    const logger = createLogger({
      level: config.logging.level,
      ...(config.logging.pretty !== undefined ? { pretty: config.logging.pretty } : {}),
      secrets,
      destination: io.stdout,
    });

    const real = io.stdout === process.stdout;
    const controller = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      if (controller.signal.aborted) {
        // A second signal: the operator does not want to wait.
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      }
      logger.info({ signal }, 'signal received');
      controller.abort();
    };
    // SIGHUP: the terminal `./sy start` runs in was closed. Left to its default, it killed the hub
    // at once and left the embedded Postgres (in its own process group) running without an owner.
    if (real) {
      for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
      // After a hangup every write to the terminal fails (EIO; EPIPE for a closed pipe): the log
      // has nowhere to go, but the hub must still stop and stop its Postgres, not die on the error.
      process.stdout.on('error', ignoreLostOutput);
      process.stderr.on('error', ignoreLostOutput);
    }
    try {
      const running = await startHubProcess(config, {
        role,
        io,
        logger,
        secrets,
        signal: controller.signal,
        ...(port !== undefined ? { port } : {}),
      });
      const outcome = await running.closed;
      // Lost pulled notifications (each logged as an error): a supervisor must see the stop failed.
      return outcome.pulledNotificationsLost > 0 ? 1 : 0;
    } catch (error) {
      if (error instanceof ConfigError) return reportProblems(io, shown, error.problems);
      // A signal while it waited for its database: a stop like any other, nothing was started.
      if (error instanceof StoppedWhileWaiting) {
        logger.info('stopped');
        return 0;
      }
      // The wait for the database ran out: an operator's condition, said in one line, no stack.
      if (error instanceof DatabaseWaitExpired) {
        logger.fatal({ code: error.code }, `switchyard could not start: ${error.message}`);
        io.stderr.write(`switchyard: could not start: ${error.message}\n`);
        return 1;
      }
      logger.fatal({ err: error }, 'switchyard could not start');
      io.stderr.write(secretScrubber(secrets)(`switchyard: could not start: ${(error as Error).message}\n`));
      return 1;
    } finally {
      if (real) {
        for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
        // The error listeners stay: the last log lines may still be written after this.
        // Everything is closed; a stray handle (a library timer) must not keep the process up.
        setTimeout(() => process.exit(process.exitCode ?? 0), EXIT_GRACE_MS).unref();
      }
    }
  },
};
