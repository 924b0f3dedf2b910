import { SwitchyardError } from '@switchyard/core';
import { formatProblem } from './load.ts';
import type { ConfigProblem } from './types.ts';

/**
 * The config file has problems (`SY_CONFIG_INVALID`). The message lists them one a line, located;
 * like the problems themselves it never holds a secret value.
 *
 * @example
 * ```ts
 * const result = await loadConfig(path, { connectors: shippedConnectors });
 * if (!result.ok) throw new ConfigError(result.problems);
 * ```
 */
export class ConfigError extends SwitchyardError {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super('SY_CONFIG_INVALID', `the configuration has ${count}:\n${problems.map(formatProblem).join('\n')}`, {
      details: { problems: problems.map((p) => ({ ...p })) },
    });
    this.problems = problems;
  }
}
