import { describeConformance } from '@switchyard/testing';
import type { Config } from './config.ts';
import { docplannerConnector } from './index.ts';

const API_KEY = 'dp-push-key-7f3a9c2e41';

const config: Config = {
  domain: 'znanylekarz.pl',
  clientId: '1234_conformance',
  clientSecret: 'client-secret-for-tests',
  pushAuth: { headerName: 'X-Docplanner-Key', apiKey: API_KEY },
};

// Order matters: one shared context, so the booking keeps its hub id through gate, move and cancel.
describeConformance({
  connector: docplannerConnector,
  config,
  fixturesDir: new URL('../fixtures/', import.meta.url),
  credentials: {
    good: { headers: { 'x-docplanner-key': API_KEY } },
    wrong: [
      { headers: { 'x-docplanner-key': 'not-the-key' } },
      { headers: { 'x-api-key': API_KEY } },
      { headers: { 'x-docplanner-key': '' } },
    ],
    missing: {},
  },
  fixtures: [
    { file: 'address-assigned.json', expect: ['schedule.activated'] },
    { file: 'address-service-created.json', expect: ['schedule.updated'] },
    { file: 'address-service-changed.json', expect: ['schedule.updated'] },
    { file: 'address-service-deleted.json', expect: ['schedule.updated'] },
    { file: 'address-commercial-type-changed.json', expect: ['schedule.updated'] },
    { file: 'slot-booking.json', expect: ['appointment.booking_requested'], description: 'gate' },
    { file: 'slot-booked.json', expect: ['appointment.created'] },
    { file: 'booking-confirmed.json', expect: ['appointment.confirmed'] },
    { file: 'slot-changed.json', expect: ['slot.changed'], description: 'legacy, +0100 offset' },
    { file: 'slot-overbooked.json', expect: ['appointment.created'], description: 'legacy' },
    { file: 'booking-moving.json', expect: ['appointment.reschedule_requested'], description: 'gate' },
    { file: 'booking-moved.json', expect: ['appointment.rescheduled'] },
    { file: 'slot-booked-paid.json', expect: ['appointment.created'] },
    {
      file: 'booking-payment-status-changed-partial.json',
      expect: ['appointment.updated'],
      description: 'a booking object with ids and times only',
    },
    // Paid (2026-03-05), then refunded (2026-03-06): in the order Docplanner tells them, as an older
    // payment change arriving after a newer one is ignored.
    { file: 'booking-payment-status-changed.json', expect: ['appointment.updated'] },
    { file: 'slot-booked-by-doctor.json', expect: ['appointment.created'] },
    { file: 'booking-moved-address-change.json', expect: ['appointment.rescheduled'] },
    { file: 'slot-booked-by-integration.json', expect: ['appointment.created'] },
    { file: 'booking-canceled-by-integration.json', expect: ['appointment.cancelled'] },
    { file: 'slot-booked-videocall.json', expect: ['appointment.created'] },
    { file: 'booking-moving-canceling-by-no-patient.json', expect: ['appointment.reschedule_requested'] },
    { file: 'break-created.json', expect: ['slot.blocked'] },
    { file: 'break-moved.json', expect: ['slot.block_moved'] },
    { file: 'break-removed.json', expect: ['slot.unblocked'] },
    { file: 'booking-canceled.json', expect: ['appointment.cancelled'], description: 'the moved booking' },
    { file: 'presence-marked-absent.json', expect: ['appointment.no_show'] },
    { file: 'presence-marked-present.json', expect: ['appointment.arrived'] },
    { file: 'unknown-name.json', expect: 'ignored' },
    { file: 'address-unassigned.json', expect: ['schedule.deactivated'] },
  ],
  malformedBodies: [
    '{"name":"slot-booked","data":[],"created_at":"2026-03-02T09:14:07+01:00"}',
    '{"name":"slot-booked","data":{},"created_at":"yesterday"}',
    '{"data":{},"created_at":"2026-03-02T09:14:07+01:00"}',
  ],
});
