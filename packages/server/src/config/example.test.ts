import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { shippedConnectors } from '../connectors.ts';
import { formatProblem, loadConfig } from './load.ts';

const example = fileURLToPath(new URL('../../../../examples/switchyard.yaml', import.meta.url));

describe('examples/switchyard.yaml', () => {
  it('validates with no environment at all (demo defaults)', async () => {
    const result = await loadConfig(example, { env: {}, connectors: shippedConnectors });
    expect(result.problems.map(formatProblem)).toEqual([]);
    expect(result.ok).toBe(true);
  });

  // A demo, not a catalog: registering a connector (docs/writing-a-connector.md §14) does not
  // require an instance here, so the test asks only that every instance is a registered one.
  it('configures instances of shipped connectors only, each once, webhook and pull subscriptions, one of them FHIR', async () => {
    const result = await loadConfig(example, { env: {}, connectors: shippedConnectors });
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    const names = result.config.instances.map((i) => i.connector.name);
    expect(names.length).toBeGreaterThan(0);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(shippedConnectors.map((c) => c.name)).toContain(name);
    expect([...new Set(result.config.subscriptions.map((s) => s.kind))].sort()).toEqual(['pull', 'webhook']);
    // The README's FHIR walkthrough uses it.
    expect(result.config.subscriptions.find((s) => s.id === 'ehr')?.format).toBe('fhir-r4-notification');
  });

  it('takes real secrets from the environment when they are set', async () => {
    const result = await loadConfig(example, {
      env: { QUABLE_AUTHORIZATION: 'Bearer real-quable-token-xyz' },
      connectors: shippedConnectors,
    });
    if (!result.ok) throw new Error(result.problems.map(formatProblem).join('\n'));
    const quable = result.config.instances.find((i) => i.connector.name === 'quable');
    expect(quable?.settings.authorization).toBe('Bearer real-quable-token-xyz');
    expect(result.secrets).toContain('Bearer real-quable-token-xyz');
  });
});
