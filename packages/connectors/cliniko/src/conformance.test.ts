import { describeConformance } from '@switchyard/testing';
import { clinikoConnector } from './index.ts';
import { fixtureSettings } from './testing.ts';

// Pull-only: each fixture is one page of GET /individual_appointments, fed to pull.fetch. In
// order, with one shared context: the appointment is booked, moved, then cancelled.
describeConformance({
  connector: clinikoConnector,
  config: fixtureSettings,
  fixturesDir: new URL('../fixtures/', import.meta.url),
  fixtures: [
    { file: 'page-booked.json', expect: ['appointment.created'] },
    { file: 'page-rescheduled.json', expect: ['appointment.rescheduled'] },
    { file: 'page-cancelled.json', expect: ['appointment.cancelled'] },
    { file: 'page-empty.json', expect: 'test', description: 'nothing changed since the watermark' },
  ],
});
