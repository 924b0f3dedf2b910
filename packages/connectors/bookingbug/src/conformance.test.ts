import { describeConformance } from '@switchyard/testing';
import { basicAuthorization } from './auth.ts';
import { bookingbugConnector } from './index.ts';

const username = 'switchyard-bb';
const password = 'bb-push-password-0123456789';

describeConformance({
  connector: bookingbugConnector,
  config: { basicAuth: { username, password } },
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { headers: { authorization: basicAuthorization(username, password) } },
    wrong: [
      { headers: { authorization: basicAuthorization(username, 'not-the-password-0123456') } },
      { headers: { authorization: basicAuthorization('someone-else', password) } },
      { headers: { authorization: `Bearer ${password}` } },
      { headers: { authorization: `Basic ${Buffer.from(password).toString('base64')}` } },
    ],
    missing: {},
  },
  fixtures: [
    { file: 'created.json', expect: ['appointment.created'], description: 'the vendor sample purchase' },
    {
      file: 'repeat-unchanged.json',
      expect: 'ignored',
      description: 'the same purchase again, only payment log / attended / describe differ',
    },
    { file: 'amended-time.json', expect: ['appointment.rescheduled'] },
    {
      file: 'amended-other.json',
      expect: ['appointment.updated'],
      description: 'another practitioner and room',
    },
    {
      file: 'jrni-legacy-booking-no-show.json',
      expect: ['appointment.no_show'],
      description: 'the same booking told by a JRNI data webhook',
    },
    {
      file: 'jrni-legacy-booking-no-show-undone.json',
      expect: ['appointment.status_reverted'],
      description: 'check-in status cleared',
    },
    { file: 'cancelled-via-cancellation-url.json', route: 'cancellation', expect: ['appointment.cancelled'] },
    { file: 'two-bookings.json', expect: ['appointment.created', 'appointment.created'] },
    {
      file: 'moved-new-booking-id.json',
      expect: ['appointment.rescheduled'],
      description: 'a booking id replaced by a new one at a new time: a move, same hub id',
    },
    {
      file: 'cancelled-via-is-cancelled.json',
      expect: ['appointment.cancelled'],
      description: 'booking URL, second booking flagged is_cancelled',
    },
    {
      file: 'jrni-data-create.json',
      expect: ['appointment.created'],
      description: "JRNI's data webhook sample",
    },
    { file: 'jrni-data-modify-time.json', expect: ['appointment.rescheduled'] },
    { file: 'jrni-data-checked-in.json', expect: ['appointment.arrived'] },
    { file: 'jrni-data-being-seen.json', expect: ['appointment.in_progress'] },
    { file: 'jrni-data-completed.json', expect: ['appointment.completed'] },
    {
      file: 'jrni-notification-created.json',
      expect: ['appointment.created'],
      description: "JRNI's notification webhook sample",
    },
    { file: 'jrni-notification-confirmed.json', expect: ['appointment.confirmed'] },
    { file: 'jrni-notification-reminder.json', expect: 'ignored', description: 'a reminder changes nothing' },
    { file: 'jrni-notification-cancelled.json', expect: ['appointment.cancelled'] },
  ],
});
