/**
 * The cost of the FHIR formats: end-to-end events/s with one `fhir-r4` subscription, and with one
 * `fhir-r4-notification` subscription, beside one `cloudevents` subscription, each a fresh hub on
 * the same machine in the same run (same pushes, same subscriber). A FHIR delivery maps the stored
 * event, validates the resource with the production validator (once per event; medplum walks only
 * shapes it has not accepted before, docs/fhir.md "Accepted shapes") and then posts
 * it; the validator's definitions are loaded by the first FHIR delivery, inside the warm-up.
 * Target: ≥ 0.9× the CloudEvents throughput.
 */
import { hubRun } from './e2e.ts';
import { pairedRuns, pooledRate } from './lib/paired.ts';
import { type BenchOptions, type BenchResult, mib, row } from './lib/result.ts';

export async function run(options: BenchOptions): Promise<BenchResult> {
  const events = options.quick ? 1000 : 20_000;
  const rounds = options.quick ? 1 : 2;
  options.log(
    `fhir: cloudevents, fhir-r4 and fhir-r4-notification subscriptions, ${events} events, ${rounds} rounds`,
  );
  const runs = await pairedRuns(options, rounds, {
    cloudevents: () => hubRun(options, events, 1, { format: 'cloudevents' }),
    'fhir-r4': () => hubRun(options, events, 1, { format: 'fhir-r4' }),
    'fhir-r4-notification': () => hubRun(options, events, 1, { format: 'fhir-r4-notification' }),
  });
  const arm = (r: (typeof runs)['cloudevents']) => ({
    eventsPerSecond: pooledRate(r),
    rss: Math.max(...r.map((x) => x.rss)),
    seconds: r.map((x) => x.seconds.toFixed(1)).join(' / '),
  });
  const cloudevents = arm(runs.cloudevents);
  const fhir = arm(runs['fhir-r4']);
  const notification = arm(runs['fhir-r4-notification']);

  const baselineLabel = 'the same hub, 1 cloudevents subscription';
  return {
    name: 'FHIR',
    rows: [
      row('E2E events/s, 1 fhir-r4 subscription', fhir.eventsPerSecond, cloudevents.eventsPerSecond, {
        unit: 'events/s',
        baselineLabel,
        higherIsBetter: true,
        target: { kind: 'min', value: 0.9, onRatio: true, label: '≥ 0.9× CloudEvents' },
      }),
      row(
        'E2E events/s, 1 fhir-r4-notification subscription',
        notification.eventsPerSecond,
        cloudevents.eventsPerSecond,
        {
          unit: 'events/s',
          baselineLabel,
          higherIsBetter: true,
          target: { kind: 'min', value: 0.9, onRatio: true, label: '≥ 0.9× CloudEvents' },
        },
      ),
      row('Peak RSS, fhir-r4', mib(fhir.rss), mib(cloudevents.rss), {
        unit: 'MiB',
        baselineLabel: 'cloudevents run',
      }),
      row('Peak RSS, fhir-r4-notification', mib(notification.rss), mib(cloudevents.rss), {
        unit: 'MiB',
        baselineLabel: 'cloudevents run',
      }),
    ],
    notes: [
      `${events.toLocaleString('en')} unique Docplanner slot-booked pushes (each an appointment.created with patient, doctor and address) after a 500-push warm-up, into a fresh hub per run with one appointment.* subscription; the clock runs from the first push to the last subscriber 2xx. ${rounds} rounds, the order reversed every other round (bench/lib/paired.ts), a CHECKPOINT before every run; events/s is all the rounds' events over all their seconds. Took ${cloudevents.seconds} s (cloudevents), ${fhir.seconds} s (fhir-r4), ${notification.seconds} s (fhir-r4-notification).`,
      "FHIR bodies are built at delivery time: toFhir (docs/fhir.md) and validateFhir (@medplum/core, the R4 definitions the hub indexes, behind the accepted shapes: a resource shaped like one medplum accepted gets its verdict without the walk) of the resource, once per event (one subscription here, so once per delivery); the notification also takes its event number when the delivery is first claimed (the claim statement advances the subscription's counter) and wraps the resource in the Backport Bundle.",
    ],
  };
}
