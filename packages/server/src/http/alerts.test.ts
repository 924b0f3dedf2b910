/**
 * examples/prometheus-alerts.yml, the rules docs/operations.md ("Alerts") offers, against the
 * metrics the hub serves as docs/api.md lists them: a rule naming a series or a label the hub does
 * not have never fires, and Prometheus does not say so (an empty selector is a valid query).
 * admin.int.test.ts checks that every family a started hub serves is in that table; the incident
 * tests the Alerts section cites check that each series moves when its incident happens.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));
const read = (path: string) => readFileSync(`${ROOT}${path}`, 'utf8');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: { severity?: string };
  annotations?: { summary?: string; runbook?: string };
}

const rules: Rule[] = (
  parse(read('examples/prometheus-alerts.yml')) as { groups: { rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);

/** docs/api.md's metrics table: each family's row (its labels column names the labels in backticks). */
const documented = new Map(
  [...read('docs/api.md').matchAll(/^\| `([a-z_]+)` \|([^\n]*)$/gm)].map((m) => [m[1]!, m[2]!]),
);

/**
 * Families read from the database or the attempt log: every process serves the same whole-hub
 * value, so a sum over processes counts it once per process.
 */
const WHOLE_HUB = [
  'switchyard_deliveries',
  'switchyard_queue_depth',
  'switchyard_pull_lag_seconds',
  'switchyard_pull_consecutive_failures',
  'switchyard_pull_last_success_timestamp_seconds',
  'switchyard_delivery_attempts_total',
  'switchyard_subscription_disabled',
  'switchyard_deliveries_dead',
  'switchyard_feed_gap_events',
  'switchyard_feed_unread_events',
  'switchyard_feed_oldest_unread_age_seconds',
];

/**
 * Labels Prometheus sets on every series it scrapes (the target's). A label of the same name the
 * hub serves is renamed `exported_<name>` at scrape (`honor_labels: false`, the default), so a rule
 * reads the hub's `instance` (the Switchyard instance id) as `exported_instance`.
 */
const TARGET_LABELS = ['instance', 'job'];
const served = (label: string) => label.replace(/^exported_/, '');

/** The series an expression selects: family, label names matched, and where it stands. */
function selectors(expr: string): { family: string; labels: string[]; at: number }[] {
  return [...expr.matchAll(/\b((?:switchyard|nodejs|process)_[a-z_]+)(?:\{([^}]*)\})?/g)].map((m) => ({
    family: m[1]!.replace(/_(bucket|sum|count)$/, ''),
    labels: [...(m[2] ?? '').matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
    at: m.index,
  }));
}

describe('the alerting rules of examples/prometheus-alerts.yml', () => {
  it('are found, each with a unique name, a severity, a summary and a runbook section', () => {
    expect(rules.length).toBeGreaterThanOrEqual(10);
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
    for (const rule of rules) {
      expect(rule.labels?.severity, rule.alert).toMatch(/^(page|ticket)$/);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      expect(rule.annotations?.runbook, rule.alert).toMatch(/^docs\/operations\.md#alerts/);
    }
  });

  it.each(rules)('$alert selects only documented families and labels', ({ alert, expr }) => {
    const selected = selectors(expr);
    expect(selected.length, alert).toBeGreaterThan(0);
    for (const { family, labels } of selected) {
      const row = documented.get(family);
      expect(row, `${alert}: ${family} is not in docs/api.md's table`).toBeDefined();
      for (const label of labels)
        expect(row, `${alert}: ${family} has no label ${label}`).toContain(`\`${label}\``);
    }
    // Grouping labels exist on every family grouped by them.
    for (const by of expr.matchAll(/\bby\s*\(([^)]*)\)\s*\(([^()]*(?:\([^()]*\))?[^()]*)\)/g)) {
      for (const label of by[1]!.split(',').map((l) => l.trim())) {
        for (const { family } of selectors(by[2]!)) {
          expect(documented.get(family), `${alert}: ${family} has no label ${label}`).toContain(
            `\`${served(label)}\``,
          );
        }
      }
    }
  });

  it.each(rules)(
    "$alert reads the hub's instance label as Prometheus stores it (exported_instance)",
    ({ alert, expr, annotations }) => {
      // Grouped by Prometheus's own `instance` (the scraped process), a rule would pool every
      // Switchyard instance of a process: one stale pull instance hidden by a fresh one.
      const grouped = [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) =>
        m[1]!.split(',').map((l) => l.trim()),
      );
      const named = [...(annotations?.summary ?? '').matchAll(/\$labels\.([a-z_]+)/g)].map((m) => m[1]!);
      for (const label of [...grouped, ...named])
        expect(TARGET_LABELS, `${alert}: ${label} is the scrape target's, not the hub's`).not.toContain(
          label,
        );
      for (const { family, labels } of selectors(expr))
        for (const label of labels)
          expect(TARGET_LABELS, `${alert}: ${family}{${label}} is renamed at scrape`).not.toContain(label);
    },
  );

  it.each(rules)(
    '$alert aggregates whole-hub series with max or min, not a sum over processes',
    ({ alert, expr }) => {
      for (const { family, at } of selectors(expr)) {
        if (!WHOLE_HUB.includes(family)) continue;
        const aggregation = [...expr.slice(0, at).matchAll(/\b(sum|max|min|avg|count)\b/g)].at(-1)?.[1];
        expect(aggregation, `${alert}: ${family}`).toMatch(/^(max|min)$/);
      }
    },
  );

  it('SwitchyardGateDefaulting counts the requests the sweep closed with the default (abandoned)', () => {
    // The sweep counts them in switchyard_gate_abandoned_total, never in
    // switchyard_gate_decisions_total (which counts answers the vendor got: docs/gates.md), so a
    // reason "abandoned" selected on the decisions matches nothing and the alert stayed quiet.
    const { expr } = rules.find((r) => r.alert === 'SwitchyardGateDefaulting')!;
    expect(selectors(expr).map((s) => s.family)).toContain('switchyard_gate_abandoned_total');
    expect(expr).not.toMatch(/switchyard_gate_decisions_total\{[^}]*abandoned/);
  });

  it('SwitchyardDatabaseOutOfResources pages for every resource Postgres can run out of, connection slots included', () => {
    // `no_connection_slot` (53300) was left out: a Postgres whose max_connections the processes
    // (or another client) used up refused every new connection while the processes holding theirs
    // kept /readyz and switchyard_database_up green, and no rule matched the work given back.
    const { expr } = rules.find((r) => r.alert === 'SwitchyardDatabaseOutOfResources')!;
    const conditions = /condition=~"([^"]*)"/.exec(expr)?.[1]?.split('|') ?? [];
    expect(conditions.sort()).toEqual(
      ['disk_full', 'io_error', 'no_connection_slot', 'out_of_memory', 'resource_limit'].sort(),
    );
  });

  it('are each listed in docs/operations.md, "Alerts"', () => {
    const section = /^## Alerts\n([\s\S]*?)(?=^## )/m.exec(read('docs/operations.md'))?.[1] ?? '';
    expect(section).not.toBe('');
    expect(rules.map((r) => r.alert).filter((name) => !section.includes(`\`${name}\``))).toEqual([]);
  });
});
