/**
 * Cliniko's presence commands through a started hub process when the appointment PATCH ignores the
 * presence flags: Cliniko's reference lists `patient_arrived` / `did_not_arrive` on the appointment
 * but does not say its update writes them (a Rails API answers 200 leaving a parameter it does not
 * permit as it was). The connector reads the PATCH's answer and, the flags not shown, sets them
 * through the appointment's attendee (`GET …/{id}/attendees`, `PUT /attendees/{id}` with `arrived`,
 * the documented write). Here end to end: real Postgres, the Cliniko simulator over real HTTP with
 * `presenceWritable: false`, the command's outcome, the flags at Cliniko, and the next poll's event
 * carrying `data.causedBy`. Twice: with an update that changes nothing answered 200 (Rails), and
 * answered 422 (`refuseRepeats`: what Cliniko answers then is not documented), as an update of
 * flags it ignores changes nothing.
 */
import type { ClinikoSimulator } from '@switchyard/connector-cliniko/simulator';
import { useTestDatabase } from '@switchyard/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ClinikoHub, causedBy, pollAppointment, startClinikoHub } from './cliniko-hub.test-support.ts';

type Flags = { patient_arrived?: boolean | null; did_not_arrive?: boolean | null };

for (const refuseRepeats of [false, true]) {
  describe(`Cliniko presence commands when the appointment PATCH ignores the flags (a PATCH that changes nothing answered ${refuseRepeats ? '422' : '200'})`, () => {
    const db = useTestDatabase();
    let c: ClinikoHub;
    let sim: ClinikoSimulator;

    beforeAll(async () => {
      c = await startClinikoHub(db.url(), ['appointment.*', 'command.*'], {
        presenceWritable: false,
        refuseRepeats,
      });
      sim = c.sim;
    });

    afterAll(async () => {
      await c?.stop();
    });

    let nextId = refuseRepeats ? 9_700 : 9_600;

    /** An appointment Cliniko lists with `flags`, once the hub has polled it: its subject and id. */
    async function polled(flags: Flags): Promise<{ subject: string; id: string }> {
      const id = String(nextId++);
      return { subject: await pollAppointment(c, id, flags), id };
    }

    /**
     * The calls made since request `from` other than the poll's lists: method, route and status
     * (and the status of a write carried out whose answer was lost). One command at a time.
     */
    const callsSince = (from: number) =>
      sim.requests
        .slice(from)
        .filter((r) => r.method !== 'GET' || /^\/v1\/individual_appointments\/\d+/.test(r.url))
        .map(
          (r) =>
            `${r.method} ${r.url.replace(/\/attendees\/\d+$/, '/attendees/{attendee}')} ${r.status}${r.lostStatus === undefined ? '' : ` ${r.lostStatus}`}`,
        );

    /** The PATCH of appointment `id` that changes nothing, as this simulator answers it (a 422 read back). */
    const ignoredPatch = (id: string) =>
      refuseRepeats
        ? [`PATCH /v1/individual_appointments/${id} 422`, `GET /v1/individual_appointments/${id} 200`]
        : [`PATCH /v1/individual_appointments/${id} 200`];

    for (const [type, before, flags, echo] of [
      [
        'appointment.mark_arrived',
        {},
        { patient_arrived: true, did_not_arrive: false },
        'appointment.arrived',
      ],
      [
        'appointment.mark_no_show',
        { patient_arrived: true },
        { patient_arrived: false, did_not_arrive: true },
        'appointment.no_show',
      ],
      // The attendee's `arrived: null` unsets both flags (Cliniko nulls both, cliniko-api#153).
      [
        'appointment.clear_presence',
        { did_not_arrive: true },
        { patient_arrived: null, did_not_arrive: null },
        'appointment.status_reverted',
      ],
    ] as const) {
      it(`${type}: the PATCH changes nothing, the attendee's arrived is set, command.succeeded, and the next poll's ${echo} carries causedBy`, async () => {
        const { subject, id } = await polled(before);
        const from = sim.requests.length;
        const sent = await c.api('POST', '/v1/commands', { type, subject, data: {} });
        expect(sent.status).toBe(202);
        const done = await c.finished(sent.json.id);
        expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
        expect(done.result.unchanged).toBeUndefined();
        expect(done.result.alreadyDone).toBeUndefined();
        expect(sim.get(id)).toMatchObject(flags);
        expect(callsSince(from)).toEqual([
          ...ignoredPatch(id),
          `GET /v1/individual_appointments/${id}/attendees 200`,
          'PUT /v1/attendees/{attendee} 200',
        ]);
        const echoed = await c.subscriber.waitFor((r) => r.subject === subject && r.type === echo);
        expect(causedBy(echoed)).toEqual({ commandId: sent.json.id });
        // One change at Cliniko (the attendee's), so one event: the PATCH saved no version.
        await new Promise((r) => setTimeout(r, 1000));
        expect(c.subscriber.requests.filter((r) => r.subject === subject).map((r) => r.type)).toEqual([
          'appointment.created',
          echo,
        ]);
      });
    }

    it('an arrival already shown: no attendee write, unchanged (no echo taken)', async () => {
      const { subject } = await polled({ patient_arrived: true });
      const id = String(nextId - 1);
      const from = sim.requests.length;
      const sent = await c.api('POST', '/v1/commands', {
        type: 'appointment.mark_arrived',
        subject,
        data: {},
      });
      expect(await c.finished(sent.json.id)).toMatchObject({
        status: 'succeeded',
        result: { unchanged: true },
      });
      expect(callsSince(from)).toEqual(ignoredPatch(id));
    });

    if (!refuseRepeats) {
      it('a PATCH whose answer was lost is sent again; the attendee sets the flags once, the echo is marked', async () => {
        const { subject, id } = await polled({});
        const from = sim.requests.length;
        sim.loseAnswers(1, 502);
        const sent = await c.api('POST', '/v1/commands', {
          type: 'appointment.mark_arrived',
          subject,
          data: {},
        });
        expect(await c.finished(sent.json.id)).toMatchObject({ status: 'succeeded', attempts: 2 });
        expect(sim.get(id)).toMatchObject({ patient_arrived: true, did_not_arrive: false });
        expect(callsSince(from)).toEqual([
          `PATCH /v1/individual_appointments/${id} 502 200`,
          `PATCH /v1/individual_appointments/${id} 200`,
          `GET /v1/individual_appointments/${id}/attendees 200`,
          'PUT /v1/attendees/{attendee} 200',
        ]);
        const echoed = await c.subscriber.waitFor(
          (r) => r.subject === subject && r.type === 'appointment.arrived',
        );
        expect(causedBy(echoed)).toEqual({ commandId: sent.json.id });
      });
    }
  });
}
