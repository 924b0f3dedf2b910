#!/usr/bin/env node
// The `switchyard` executable. Plain JavaScript: it checks the Node version first (one clear line
// instead of a syntax error from a too-old Node), makes sure TypeScript sources can be loaded, then
// hands over to src/cli/main.ts.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkNodeVersion, stripsTypes } from './node-guard.mjs';

const verdict = checkNodeVersion(process.version);
if (!verdict.ok) {
  process.stderr.write(`${verdict.message}\n`);
  process.exit(1);
}

if (!stripsTypes(process.features)) {
  if (process.env.SWITCHYARD_REEXEC === '1') {
    process.stderr.write(
      'switchyard: this Node cannot load TypeScript even with --experimental-strip-types; install Node 24\n',
    );
    process.exit(1);
  }
  const child = spawnSync(
    process.execPath,
    [
      '--experimental-strip-types',
      '--disable-warning=ExperimentalWarning',
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit', env: { ...process.env, SWITCHYARD_REEXEC: '1' } },
  );
  process.exit(child.status ?? 1);
}

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
