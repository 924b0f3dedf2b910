import { describeConformance } from '@switchyard/testing';
import { clinikoConnector } from './index.ts';
import { fixtureSettings } from './testing.ts';

// Pull-only: each fixture is one page of GET /individual_appointments, fed to pull.fetch. In
// order, with one shared context: the appointment is booked, moved, then cancelled; then a block is
// listed, moved and deleted (pages of /unavailable_blocks and /deleted, asked from a cursor there).
const AT = (list: string) => `individual_appointments=2016-07-01T00:00:00Z||&at=${list}`;
describeConformance({
  connector: clinikoConnector,
  config: fixtureSettings,
  fixturesDir: new URL('../fixtures/', import.meta.url),
  fixtures: [
    { file: 'page-booked.json', expect: ['appointment.created'] },
    { file: 'page-rescheduled.json', expect: ['appointment.rescheduled'] },
    { file: 'page-cancelled.json', expect: ['appointment.cancelled'] },
    { file: 'page-empty.json', expect: 'test', description: 'nothing changed since the watermark' },
    { file: 'page-unavailable-blocks.json', expect: ['slot.blocked'], cursor: AT('unavailable_blocks') },
    {
      file: 'page-unavailable-blocks-moved.json',
      expect: ['slot.block_moved'],
      cursor: AT('unavailable_blocks'),
    },
    {
      file: 'page-unavailable-blocks-deleted.json',
      expect: ['slot.unblocked'],
      cursor: AT('unavailable_blocks/deleted'),
    },
  ],
});
