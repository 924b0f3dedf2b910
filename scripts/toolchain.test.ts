/**
 * scripts/toolchain.sh's `sy_pnpm_ca`: pnpm's commands get npm's CA file (`cafile`) through
 * NODE_EXTRA_CA_CERTS, so that a registry behind a TLS-inspecting proxy that answers npm answers
 * pnpm too; a CA file the environment names already, or none that can be read, is left alone.
 * npm's setting comes from `npm_config_cafile` here (an npmrc says the same to npm).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
