import { createServer, type IncomingMessage } from 'node:http';
import { verifySignature } from '../../delivery/sign.ts';
import { type CliIO, type Command, configOption, UsageError } from '../command.ts';

interface FhirShape {
  resourceType?: unknown;
  id?: unknown;
  type?: unknown;
  meta?: { tag?: { code?: unknown }[] };
  entry?: { resource?: FhirShape & { parameter?: FhirParameter[] } }[];
}
interface FhirParameter {
  name?: unknown;
  valueString?: unknown;
  valueCode?: unknown;
  valueReference?: { reference?: unknown };
  part?: FhirParameter[];
}

/**
 * The event type and subject of a FHIR delivery (`format: fhir-r4` or `fhir-r4-notification`,
 * docs/fhir.md): the event type is the resource's `meta.tag`, the subject `ResourceType/id`, and a
 * Backport notification's event number follows it. A notification without an event (the heartbeat
 * a subscription's test sends) is its notification type and subscription.
 */
function describeFhir(body: FhirShape): [string, string] {
  let resource = body;
  let number = '';
  if (body.resourceType === 'Bundle' && body.type === 'history') {
    const status = body.entry?.[0]?.resource;
    const kind = status?.parameter?.find((p) => p.name === 'type')?.valueCode;
    if (typeof kind === 'string' && kind !== 'event-notification') {
      const subscription = status?.parameter?.find((p) => p.name === 'subscription')?.valueReference
        ?.reference;
      return [kind, typeof subscription === 'string' ? subscription : '?'];
    }
    const event = status?.parameter?.find((p) => p.name === 'notification-event');
    const n = event?.part?.find((p) => p.name === 'event-number')?.valueString;
    if (typeof n === 'string') number = ` (event ${n})`;
    resource = body.entry?.[1]?.resource ?? body;
  }
  const tag = resource.meta?.tag?.[0]?.code;
  return [
    typeof tag === 'string' ? tag : '?',
    `${String(resource.resourceType)}/${String(resource.id ?? '?')}${number}`,
  ];
}

/** What `listen` prints for one delivery: one line, never the secret. */
export function describeDelivery(
  headers: IncomingMessage['headers'],
  body: Buffer,
  secrets: readonly string[],
): string {
  const check = verifySignature({ headers, body, secrets });
  let type = '?';
  let subject = '?';
  try {
    const event = JSON.parse(body.toString('utf8')) as {
      type?: unknown;
      subject?: unknown;
      resourceType?: unknown;
    };
    if (typeof event.resourceType === 'string') {
      [type, subject] = describeFhir(event as FhirShape);
    } else {
      if (typeof event.type === 'string') type = event.type;
      if (typeof event.subject === 'string') subject = event.subject;
    }
  } catch {
    type = '(not JSON)';
  }
  const signature = check.ok ? 'signature ok' : `signature INVALID (${check.reason})`;
  return `${new Date().toISOString()}  ${type}  ${subject}  webhook-id ${String(headers['webhook-id'] ?? '-')}  ${signature}`;
}

/**
 * `switchyard listen`: a subscriber for trying the hub. It serves a webhook subscription's URL from
 * the config file (its host, port and path), verifies each delivery's Standard Webhooks signature
 * with the subscription's secrets, prints one line per event (or the whole event with --print-body)
 * and answers 200, which also approves gate requests; `--refuse` answers 409 to every request.
 */
export const listenCommand: Command = {
  name: 'listen',
  summary: "serve a webhook subscription's URL locally and print what the hub delivers",
  usage: '[--subscription ID] [--config FILE] [--print-body] [--refuse]',
  details: [
    'Options:',
    '  -c, --config FILE     the config file (defaults as for start)',
    '  --subscription ID     a webhook subscription whose url is on this machine (default: the first one)',
    '  --print-body          print each delivered event in full',
    '  --refuse              answer 409 {"decision":"refuse"} instead of 200 (to try retries and gate refusals)',
  ].join('\n'),
  options: {
    ...configOption,
    subscription: { type: 'string' },
    'print-body': { type: 'boolean' },
    refuse: { type: 'boolean' },
  },
  async run(args, io) {
    const { loadForCommand } = await import('../hub.ts');
    const wanted = args.values.subscription;
    // Only this subscription's secrets: listen serves its URL, on a machine that may be the
    // subscriber's, where the hub's secretKey and the vendors' credentials are not set.
    const only = typeof wanted === 'string' ? { subscription: wanted } : {};
    const loaded = await loadForCommand(args, io, only, 'not listening');
    if (typeof loaded === 'number') return loaded;
    const sub = loaded.config.subscriptions.find((s) =>
      typeof wanted === 'string' ? s.id === wanted : s.kind === 'webhook',
    );
    if (!sub)
      throw new UsageError(
        `no webhook subscription ${typeof wanted === 'string' ? wanted : ''} in ${loaded.shown}`,
      );
    if (sub.kind !== 'webhook' || !sub.url)
      throw new UsageError(`subscription ${sub.id} is not a webhook subscription`);
    const url = new URL(sub.url);
    if (url.protocol !== 'http:')
      throw new UsageError(`listen serves plain http; ${sub.id} uses ${url.protocol}`);
    const secrets = sub.secrets ?? [];
    if (secrets.length === 0)
      io.stderr.write(`subscription ${sub.id} has no secret in the file: signatures cannot be checked\n`);
    return serve(io, {
      host: url.hostname,
      port: Number(url.port || 80),
      path: url.pathname,
      secrets,
      printBody: args.values['print-body'] === true,
      refuse: args.values.refuse === true,
      label: sub.id,
    });
  },
};

async function serve(
  io: CliIO,
  o: {
    host: string;
    port: number;
    path: string;
    secrets: string[];
    printBody: boolean;
    refuse: boolean;
    label: string;
  },
): Promise<number> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== o.path) {
        res.writeHead(404).end();
        return;
      }
      io.stdout.write(
        `${describeDelivery(req.headers, body, o.secrets)}${o.refuse ? '  answered 409 refuse' : ''}\n`,
      );
      if (o.printBody) io.stdout.write(`${body.toString('utf8')}\n`);
      res.writeHead(o.refuse ? 409 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ decision: o.refuse ? 'refuse' : 'approve' }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, resolve);
  });
  const answering = o.refuse ? ', answering 409 {"decision":"refuse"} to every delivery' : '';
  io.stderr.write(
    `listening for ${o.label} on http://${o.host}:${o.port}${o.path}${answering} (Ctrl-C to stop)\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
