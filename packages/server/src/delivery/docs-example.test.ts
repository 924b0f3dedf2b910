/**
 * The subscriber example of docs/delivery.md ("Verifying the signature"), type-checked as written
 * under `strict` against the `standardwebhooks` package it names, with stand-ins for express and
 * the reader's own functions. It passed `process.env.SWITCHYARD_SECRET` (`string | undefined`) and
 * express's `req.headers` (Node's `IncomingHttpHeaders`) where the package takes a `string` and a
 * `Record<string, string>`: a reader copying it into a TypeScript project got two compile errors
 * (doc-examples audit).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { expect, it } from 'vitest';

const doc = readFileSync(new URL('../../../../docs/delivery.md', import.meta.url), 'utf8');
/** The example's code: the one `ts` block under "Verifying the signature". */
const example = /## Verifying the signature[\s\S]*?```ts\n([\s\S]*?)\n```/.exec(doc)?.[1];

/** What the example takes from express and from the reader's application. */
const standIns = `import type { IncomingMessage } from 'node:http';
declare const express: { raw(options: { type: string }): unknown };
declare const app: {
  post(path: string, parser: unknown, handler: (req: IncomingMessage & { body: Buffer }, res: { sendStatus(status: number): void }) => void): void;
};
declare function alreadyProcessed(id: string | string[] | undefined): boolean;
declare function enqueue(event: unknown): void;
`;

it('type-checks under strict with the standardwebhooks package', () => {
  expect(example, 'docs/delivery.md has no ts example under "Verifying the signature"').toBeDefined();
  // Beside this file, so that `standardwebhooks` and @types/node resolve as the server's do.
  const file = fileURLToPath(new URL('./docs-example.virtual.ts', import.meta.url));
  const source = `${standIns}${example}\nexport {};\n`;
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: ['node'],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, version, ...rest) =>
    name === file ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
  host.fileExists = (name) => name === file || fileExists(name);
  host.readFile = (name) => (name === file ? source : readFile(name));
  const program = ts.createProgram([file], options, host);
  const problems = ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  expect(problems).toEqual([]);
});
