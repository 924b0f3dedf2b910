import { readFileSync } from 'node:fs';
import { type ConformanceOptions, describeConformance } from '@switchyard/testing';
import { describe, expect, it } from 'vitest';
import type { Config } from './config.ts';
import { clockwisemdConnector } from './index.ts';
import { fixtureSettings, fixtureVendorApi } from './testing.ts';

const KEY = fixtureSettings.auth.key;

const options: ConformanceOptions<Config> = {
  connector: clockwisemdConnector,
  config: fixtureSettings,
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { headers: { authtoken: KEY } },
    wrong: [{ headers: { authtoken: 'cw-hook-key-wrong-0123456789' } }, { params: { key: `${KEY}0` } }],
    missing: {},
  },
  vendorApi: fixtureVendorApi,
  fixtures: [
    { file: 'create.json', expect: ['appointment.created'] },
    { file: 'reschedule.json', expect: ['appointment.rescheduled'] },
    { file: 'demographics-update.json', expect: ['appointment.updated'] },
    { file: 'checkin.json', expect: ['appointment.arrived'] },
    { file: 'ready.json', expect: ['appointment.checked_in'] },
    { file: 'callback.json', expect: ['appointment.in_progress'] },
    { file: 'discharge.json', expect: ['appointment.completed'] },
    { file: 'undo-discharge.json', expect: ['appointment.status_reverted'] },
    { file: 'undo-callback.json', expect: ['appointment.status_reverted'] },
    { file: 'undo-ready.json', expect: ['appointment.status_reverted'] },
    { file: 'undo-checkin.json', expect: ['appointment.status_reverted'] },
    { file: 'legacy-action-create.json', expect: ['appointment.created'] },
    { file: 'legacy-action-checkin.json', expect: ['appointment.arrived'] },
    {
      file: 'legacy-action-remove-after-checkin.json',
      expect: ['appointment.cancelled'],
      description: 'remove after check-in is a cancellation',
    },
    { file: 'legacy-action-undo-remove.json', expect: ['appointment.restored'] },
    {
      file: 'remove-before-checkin.json',
      expect: ['appointment.no_show'],
      description: 'remove of an appointment never checked in is a no-show',
    },
    { file: 'unknown-event-type.json', expect: 'ignored' },
  ],
};

/**
 * Clockwise.MD sends neither an event id nor a timestamp, and a workflow step can genuinely repeat
 * (checkin, undo_checkin, checkin), so the dedupe key includes the receive second (see parse.ts and
 * docs/connectors/clockwisemd.md): the suite re-parses at the same receive time.
 */
describeConformance({ ...options, dedupeKeysUseReceiveTime: true });

describe(`dedupe keys: ${clockwisemdConnector.name}`, () => {
  it('dedupe keys are stable across re-parsing the same request within its receive second', () => {
    const push = clockwisemdConnector.push!;
    const body = Buffer.from(readFileSync(new URL('../fixtures/checkin.json', import.meta.url)));
    const at = (iso: string) => ({
      route: 'default',
      params: {},
      query: {},
      method: 'POST',
      headers: { 'content-type': 'application/json', authtoken: KEY },
      rawBody: body,
      sourceIp: '203.0.113.7',
      receivedAt: new Date(iso),
    });
    const a = push.parse(at('2026-01-15T10:00:00.010Z'), options.config)[0]?.dedupeKey;
    const b = push.parse({ ...at('2026-01-15T10:00:00.990Z'), sourceIp: '10.0.0.1' }, options.config)[0]
      ?.dedupeKey;
    expect(a).toBeDefined();
    expect(a).toBe(b);
  });
});
