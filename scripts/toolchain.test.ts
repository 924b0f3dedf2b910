/**
 * scripts/toolchain.sh behind a TLS-inspecting proxy. `sy_pnpm_ca`: pnpm's commands get npm's CA
 * file (`cafile`) through NODE_EXTRA_CA_CERTS, so that a registry that answers npm answers pnpm
 * too; a CA file the environment names already, or none that can be read, is left alone. npm's
 * setting comes from `npm_config_cafile` here (an npmrc says the same to npm). `sy_tools_install`:
 * npm installing into .tools still reads the machine's global npmrc, which `--prefix` would move.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const toolchain = new URL('./toolchain.sh', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'sy-toolchain-'));
const caFile = join(dir, 'proxy-ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** NODE_EXTRA_CA_CERTS after `sy_pnpm_ca`, in a shell with only `env` (and PATH, HOME) set. */
function caAfter(env: Record<string, string>): string {
  const r = spawnSync(
    'bash',
    ['-c', `set -euo pipefail; source '${toolchain}'; sy_pnpm_ca; printf '%s' "\${NODE_EXTRA_CA_CERTS:-}"`],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...env }, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`sy_pnpm_ca failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

describe('sy_pnpm_ca', () => {
  it("hands npm's CA file to Node for pnpm", () => {
    expect(caAfter({ npm_config_cafile: caFile })).toBe(caFile);
  });

  it('leaves a CA file the environment names already', () => {
    expect(caAfter({ npm_config_cafile: caFile, NODE_EXTRA_CA_CERTS: '/etc/its-own.pem' })).toBe(
      '/etc/its-own.pem',
    );
  });

  it('names none that cannot be read', () => {
    expect(caAfter({ npm_config_cafile: join(dir, 'missing.pem') })).toBe('');
  });
});

describe('sy_tools_install', () => {
  // A stand-in npm on the PATH the toolchain was given: answers `config get globalconfig` with
  // $FAKE_GLOBALCONFIG and records the arguments of anything else.
  const bin = join(dir, 'bin');
  const argsFile = join(dir, 'npm-args');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'npm'),
    `#!/bin/sh\nif [ "$1 $2 $3" = "config get globalconfig" ]; then printf '%s\\n' "$FAKE_GLOBALCONFIG"; exit 0; fi\nprintf '%s\\n' "$@" > '${argsFile}'\n`,
  );
  chmodSync(join(bin, 'npm'), 0o755);
  const npmrc = join(dir, 'global-npmrc');
  writeFileSync(npmrc, `cafile=${caFile}\n`);

  function installArgs(globalconfig: string): string[] {
    rmSync(argsFile, { force: true });
    const tools = join(dir, 'tools');
    const r = spawnSync(
      'bash',
      [
        '-c',
        `set -euo pipefail; source '${toolchain}'; SY_GIVEN_PATH="$PATH"; sy_tools_install '${tools}' pnpm@10.34.8`,
      ],
      { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: dir, FAKE_GLOBALCONFIG: globalconfig }, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`sy_tools_install failed (${r.status}): ${r.stderr}`);
    return readFileSync(argsFile, 'utf8').trim().split('\n');
  }

  it("names the machine's global npmrc, which --prefix would replace with one under .tools", () => {
    const args = installArgs(npmrc);
    expect(args[0]).toBe('install');
    expect(args[args.indexOf('--globalconfig') + 1]).toBe(npmrc);
    expect(args.indexOf('--globalconfig')).toBeLessThan(args.indexOf('--prefix'));
    expect(args.at(-1)).toBe('pnpm@10.34.8');
  });

  it('names none that cannot be read', () => {
    const args = installArgs(join(dir, 'missing-npmrc'));
    expect(args).not.toContain('--globalconfig');
    expect(args).toContain('--prefix');
  });
});

describe('sy_node_ts_options', () => {
  // Stand-in nodes: one whose `process.features.typescript` check fails (Node 22.12 to 22.17),
  // one where it passes (22.18 and later).
  function optionsAfter(typescript: boolean, given?: string): string {
    const bin = mkdtempSync(join(dir, 'node-'));
    writeFileSync(join(bin, 'node'), `#!/bin/sh\nexit ${typescript ? 0 : 1}\n`);
    chmodSync(join(bin, 'node'), 0o755);
    const r = spawnSync(
      'bash',
      [
        '-c',
        `set -euo pipefail; source '${toolchain}'; sy_node_ts_options; printf '%s' "\${NODE_OPTIONS:-}"`,
      ],
      {
        env: {
          PATH: `${bin}:/usr/bin:/bin`,
          HOME: dir,
          ...(given === undefined ? {} : { NODE_OPTIONS: given }),
        },
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(`sy_node_ts_options failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  }

  it('turns type stripping on for a Node that needs the flag, keeping what NODE_OPTIONS held', () => {
    expect(optionsAfter(false)).toBe('--experimental-strip-types --disable-warning=ExperimentalWarning');
    expect(optionsAfter(false, '--max-old-space-size=512')).toBe(
      '--experimental-strip-types --disable-warning=ExperimentalWarning --max-old-space-size=512',
    );
  });

  it('leaves NODE_OPTIONS alone for a Node that runs .ts files as it is', () => {
    expect(optionsAfter(true)).toBe('');
    expect(optionsAfter(true, '--max-old-space-size=512')).toBe('--max-old-space-size=512');
  });
});
