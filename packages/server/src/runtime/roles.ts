/**
 * The roles a hub process runs (`switchyard start --role`), apart from runtime/process.ts so the
 * commands that only check a role (`validate`) do not load the HTTP server and the workers.
 */

/** What a process does: everything, only HTTP (hooks, admin API, feed), or only the workers. */
export type HubRole = 'all' | 'http' | 'worker';

/**
 * Every role, as `--role` takes them.
 *
 * @example
 * ```ts
 * if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
 * ```
 */
export const ROLES: readonly HubRole[] = ['all', 'http', 'worker'];
