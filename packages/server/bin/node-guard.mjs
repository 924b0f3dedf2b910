// Plain JavaScript on purpose: this runs before anything else, on whatever Node the operator has,
// so it must parse on old versions and explain the problem in one line.

/** The oldest Node that runs Switchyard (type stripping behind a flag, require(esm), fetch). */
export const MIN_NODE = [22, 12, 0];

/**
 * Checks a Node version string ("v20.11.1" or "20.11.1").
 * @param {string} version
 * @returns {{ ok: true } | { ok: false, message: string }}
 * @example checkNodeVersion('v20.11.1') // { ok: false, message: 'switchyard needs Node >= 22.12 ...' }
 */
export function checkNodeVersion(version) {
  const parts = String(version)
    .replace(/^v/, '')
    .split('.')
    .map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < MIN_NODE.length; i++) {
    const have = parts[i] || 0;
    if (have > MIN_NODE[i]) return { ok: true };
    if (have < MIN_NODE[i]) {
      return {
        ok: false,
        message:
          `switchyard needs Node >= ${MIN_NODE[0]}.${MIN_NODE[1]} (found ${version}); ` +
          'run ./sy switchyard … (it fetches a suitable Node) or install Node 24',
      };
    }
  }
  return { ok: true };
}

/**
 * Whether this Node runs .ts files without a flag. Node 22.12 to 22.17 needs --experimental-strip-types.
 * @param {{ typescript?: unknown } | undefined} features process.features
 * @returns {boolean}
 */
export function stripsTypes(features) {
  return Boolean(features?.typescript);
}
