import { formatProblem, loadConfig, secretKeyProblem } from '../../config/load.ts';
import type { ConfigProblem, ResolvedConfig } from '../../config/types.ts';
import { type Command, configOption, findConfigFile } from '../command.ts';

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
  usage: '[--config FILE]',
  details: [
    'Options:',
    '  -c, --config FILE   the config file (default: $SWITCHYARD_CONFIG, else ./switchyard.yaml, else',
    '                      examples/switchyard.yaml of a source checkout; the same as start)',
    '',
    'Secret references are resolved (so a missing environment variable is reported) but their values',
    'are never printed. Exit code: 0 when the file is valid, 1 when it has problems.',
  ].join('\n'),
  options: { ...configOption },
  async run(args, io) {
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
    io.stdout.write(summary(file, result.config));
    return 0;
  },
};
