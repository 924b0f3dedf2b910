/**
 * The cost of the FHIR formats: end-to-end events/s with one `fhir-r4` subscription, and with one
 * `fhir-r4-notification` subscription, beside one `cloudevents` subscription, each a fresh hub on
 * the same machine in the same run (same pushes, same subscriber). A FHIR delivery maps the stored
 * event, validates the resource with the production validator (once per event) and then posts
 * it; the validator's definitions are loaded by the first FHIR delivery, inside the warm-up.
 * Target: ≥ 0.9× the CloudEvents throughput.
 */
import { hubRun } from './e2e.ts';
import { type BenchOptions, type BenchResult, mib, row } from './lib/result.ts';

export async function run(options: BenchOptions): Promise<BenchResult> {
  const events = options.quick ? 1000 : 20_000;
  options.log(`fhir: cloudevents subscription, ${events} events`);
  const cloudevents = await hubRun(options, events, 1, { format: 'cloudevents' });
  options.log(`fhir: fhir-r4 subscription, ${events} events`);
  const fhir = await hubRun(options, events, 1, { format: 'fhir-r4' });
  options.log(`fhir: fhir-r4-notification subscription, ${events} events`);
  const notification = await hubRun(options, events, 1, { format: 'fhir-r4-notification' });

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
      `${events.toLocaleString('en')} unique Docplanner slot-booked pushes (each an appointment.created with patient, doctor and address) after a 500-push warm-up, into a fresh hub per format with one appointment.* subscription; the clock runs from the first push to the last subscriber 2xx. Took ${cloudevents.seconds.toFixed(1)} s (cloudevents), ${fhir.seconds.toFixed(1)} s (fhir-r4), ${notification.seconds.toFixed(1)} s (fhir-r4-notification).`,
      "FHIR bodies are built at delivery time: toFhir (docs/fhir.md) and validateFhir (@medplum/core, the R4 definitions the hub indexes) of the resource, once per event (one subscription here, so once per delivery); the notification also takes its event number when the delivery is first claimed (the claim statement advances the subscription's counter) and wraps the resource in the Backport Bundle.",
    ],
  };
}
