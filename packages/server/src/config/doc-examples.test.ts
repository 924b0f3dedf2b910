import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { shippedConnectors } from '../connectors.ts';
import { formatProblem, parseConfig } from './load.ts';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** Every ```yaml block of the README and the docs, with where it is. */
function yamlExamples(): { where: string; text: string }[] {
  const documents = [
    'README.md',
    ...readdirSync(join(ROOT, 'docs'))
      .filter((name) => name.endsWith('.md'))
      .map((name) => `docs/${name}`),
    ...readdirSync(join(ROOT, 'docs/connectors'))
      .filter((name) => name.endsWith('.md'))
      .map((name) => `docs/connectors/${name}`),
  ];
  return documents.flatMap((document) => {
    const text = readFileSync(join(ROOT, document), 'utf8');
    return [...text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm)].map((m) => ({
      where: `${document}:${text.slice(0, m.index).split('\n').length}`,
      text: m[1]!,
    }));
  });
}

// A newcomer copies these into switchyard.yaml: six did not validate (an unquoted ${env:…} inside
// { }, `connectors:` for `instances:`, a subscription without `kind`, a reference in a field that
// is not secret), each found only by running it.
describe('the YAML examples of the docs', () => {
  const examples = yamlExamples();

  it('are found', () => {
    expect(examples.length).toBeGreaterThanOrEqual(10);
  });

  it.each(examples)('$where validates (as a file with `version: 1` added)', ({ where, text }) => {
    // A fragment that is one list entry (the README's `- id: ehr`) goes under `subscriptions:`.
    const body = /^\s+- id:/.test(text) ? `subscriptions:\n${text}` : text;
    // Every ${env:NAME} a snippet names resolves to a long enough value; no DATABASE_URL (embedded).
    const env = new Proxy(
      {},
      { get: (_, name) => (name === 'DATABASE_URL' ? undefined : 'example-secret-value-0123456789abcdef') },
    );
    const loaded = parseConfig(`version: 1\n${body}`, {
      file: join(ROOT, 'example.yaml'),
      connectors: shippedConnectors,
      env,
    });
    expect(loaded.problems.map(formatProblem), where).toEqual([]);
  });
});
