/**
 * The connectors this build of Switchyard ships. The config schema, `switchyard validate` and the
 * hub all read this one list, so adding a connector here is what makes `connector: <name>` valid.
 */
import acuity from '@switchyard/connector-acuity';
import bookingbug from '@switchyard/connector-bookingbug';
import calendly from '@switchyard/connector-calendly';
import cliniko from '@switchyard/connector-cliniko';
import clockwisemd from '@switchyard/connector-clockwisemd';
import docplanner from '@switchyard/connector-docplanner';
import instinctiveNotes from '@switchyard/connector-instinctive-notes';
import quable from '@switchyard/connector-quable';
import square from '@switchyard/connector-square';
import type { Connector } from '@switchyard/core';

/**
 * `connectors` sorted by name. The list below opens as `byName` and its bracket however the
 * formatter wraps it (the shape docs/writing-a-connector.md §14 shows, which
 * scripts/new-connector.int.test.ts edits as a person would): written inline with its `.sort`, the
 * formatter moved the bracket onto a line of its own once the eighth name was added.
 */
function byName(connectors: Connector[]): Connector[] {
  return connectors.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Every shipped connector, sorted by name.
 *
 * @example
 * ```ts
 * const result = await loadConfig('switchyard.yaml', { connectors: shippedConnectors });
 * ```
 */
export const shippedConnectors: readonly Connector[] = Object.freeze(
  byName([
    acuity,
    bookingbug,
    calendly,
    cliniko,
    clockwisemd,
    docplanner,
    instinctiveNotes,
    quable,
    square,
  ] as Connector[]),
);

/**
 * A shipped connector by its config name.
 *
 * @example
 * ```ts
 * findConnector('docplanner')?.displayName; // 'Docplanner'
 * ```
 */
export function findConnector(name: string): Connector | undefined {
  return shippedConnectors.find((c) => c.name === name);
}
