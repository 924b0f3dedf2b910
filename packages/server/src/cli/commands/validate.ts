import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { formatProblem, loadConfig, secretKeyProblem } from '../../config/load.ts';
import { positionOf } from '../../config/positions.ts';
import type { ConfigProblem, ResolvedConfig } from '../../config/types.ts';
import { spoolFix, spoolRootProblem } from '../../pipeline/pull-spool.ts';
import { type HubRole, ROLES } from '../../runtime/roles.ts';
import { type Command, configOption, findConfigFile, UsageError } from '../command.ts';

/**
 * A spool a process of `role` would pull into but cannot write (a read-only config directory, where
 * the default is): `start` runs all the same, its pulls stopped, so it is said here before a deploy.
 * Located at `workers.pullSpoolDir` when the file sets it, else at the first pull instance's mode.
 */
async function spoolProblem(config: ResolvedConfig, role: HubRole): Promise<ConfigProblem | undefined> {
  const pulling = config.instances.findIndex((i) => i.mode === 'pull' || i.mode === 'both');
  if (role === 'http' || pulling < 0) return undefined;
  const root = config.workers.pullSpoolDir;
  const why = await spoolRootProblem(root);
  if (!why) return undefined;
  const lineCounter = new LineCounter();
  const doc = parseDocument(await readFile(config.file, 'utf8'), { lineCounter });
  const set = (doc.getIn(['workers', 'pullSpoolDir']) ?? undefined) !== undefined;
  const at = positionOf(doc, lineCounter, set ? ['workers', 'pullSpoolDir'] : ['instances', pulling, 'mode']);
  return {
    file: config.file,
    ...at,
    path: set ? 'workers.pullSpoolDir' : `instances[${pulling}].mode`,
    message: `the pull spool ${root} (workers.pullSpoolDir${set ? '' : ', by default beside the config file'}) cannot be used: ${why}; a ${role === 'all' ? 'hub' : `--role ${role} process`} would take nothing from the pull instances' vendors; to fix it, ${spoolFix(root)}`,
  };
}

function summary(file: string, config: ResolvedConfig): string {
  const instances = config.instances.map((i) => `${i.id} (${i.connector.name}, ${i.mode})`);
  const subscriptions = config.subscriptions.map((s) => `${s.id} (${s.kind})`);
  // Never the database URL: it may hold a password.
  const database =
    config.database.kind === 'embedded'
      ? `embedded Postgres in ${config.database.dataDir}`
      : config.database.from === 'env'
        ? 'Postgres from DATABASE_URL'
        : 'Postgres from database.url';
  return [
    `${file} is valid.`,
    `  instances: ${instances.length === 0 ? 'none' : instances.join(', ')}`,
    `  subscriptions: ${subscriptions.length === 0 ? 'none' : subscriptions.join(', ')}`,
    `  database: ${database}`,
    `  server: ${config.server.host}:${config.server.port}`,
    '',
  ].join('\n');
}

/** `switchyard validate`: report every problem of a config file, located; exit 1 when there is one. */
export const validateCommand: Command = {
  name: 'validate',
  summary: 'check a config file and report every problem with its line',
  usage: '[--config FILE] [--role all|http|worker]',
  details: [
    'Options:',
    '  -c, --config FILE   the config file (default: $SWITCHYARD_CONFIG, else ./switchyard.yaml, else',
    '                      examples/switchyard.yaml of a source checkout; the same as start)',
    '  --role ROLE         the role the process will run (default all): with pull instances, all and',
    '                      worker need a pull spool this user can write (workers.pullSpoolDir); run it',
    '                      as the user and with the mounts of the process it checks for',
    '',
    'Secret references are resolved (so a missing environment variable is reported) but their values',
    'are never printed. Exit code: 0 when the file is valid, 1 when it has problems.',
  ].join('\n'),
  options: { ...configOption, role: { type: 'string' } },
  async run(args, io) {
    const role = (args.values.role ?? 'all') as HubRole;
    if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
    const { path, shown: file, example } = findConfigFile(args, io);
    if (example) io.stderr.write(`no --config and no ./switchyard.yaml: using the example ${file}\n`);
    const { shippedConnectors } = await import('../../connectors.ts');
    const report = (problems: readonly ConfigProblem[]) => {
      for (const problem of problems) io.stdout.write(`${formatProblem({ ...problem, file })}\n`);
      const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
      io.stderr.write(`${file}: ${count}\n`);
      return 1;
    };
    const result = await loadConfig(path, {
      env: io.env,
      connectors: shippedConnectors,
      reportSecretKey: true,
    });
    if (!result.ok) return report(result.problems);
    // What `start` would refuse beyond the file's own problems (resolveSecretKey asks the same).
    const secretKey = secretKeyProblem(result.config);
    if (secretKey) return report([secretKey]);
    const spool = await spoolProblem(result.config, role);
    if (spool) return report([spool]);
    io.stdout.write(summary(file, result.config));
    return 0;
  },
};
