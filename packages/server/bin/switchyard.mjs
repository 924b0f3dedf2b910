#!/usr/bin/env node
// The `switchyard` executable. Plain JavaScript: it checks the Node version first (one clear line
// instead of a syntax error from a too-old Node), makes sure TypeScript sources can be loaded, then
// hands over to src/cli/main.ts.
import { spawnSync } from 'node:child_process';
import nodeModule from 'node:module';
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

// Node's module compile cache keeps each module's type-stripped JavaScript and V8's code for it on
// disk, keyed by the source's content, so a start after the first compiles nothing: the type
// stripper (a WebAssembly build of swc) is never loaded, which saves ~20 MiB of the process's
// memory and ~0.2 s of its start (docs/architecture.md, "No build step"). NODE_COMPILE_CACHE chooses
// another directory and NODE_DISABLE_COMPILE_CACHE=1 turns it off; a directory that cannot be
// written leaves it off, silently (it is an optimization, never a reason not to start). The
// variable is set for what this process starts: the OTLP export thread loads its TypeScript entry
// from the same cache. A default import and `?.`: this file must load on a Node too old to have the
// function, to say so in one line above.
const cache = nodeModule.enableCompileCache?.(
  process.env.NODE_COMPILE_CACHE ||
    fileURLToPath(new URL('../node_modules/.cache/switchyard-compile', import.meta.url)),
);
if (cache?.directory) process.env.NODE_COMPILE_CACHE = cache.directory;

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
