/**
 * The hub's logger: pino, with two layers against leaking secrets. Known secret-bearing fields are
 * redacted by path, and every line is scrubbed of the secret values the config resolved (so a
 * secret that ends up in an error message or a vendor response is still not written).
 */
import type { Logger as ConnectorLogger } from '@switchyard/core';
import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { logTraceFields } from '../telemetry/tracing.ts';
import { requestSerializer } from './log-serializers.ts';

export type { Logger };

/** The text that replaces a redacted field or a scrubbed secret value. */
export const REDACTED = '[redacted]';

/**
 * Field paths whose values are always redacted, whatever they hold. pino's wildcards match one
 * level, so the common nestings are listed.
 */
export const REDACT_PATHS: readonly string[] = (() => {
  const keys = [
    'authorization',
    'Authorization',
    'cookie',
    'password',
    'secret',
    'secrets',
    'sharedSecret',
    'clientSecret',
    'signingSecret',
    'webhookSecret',
    'apiKey',
    'token',
    'accessToken',
    'refreshToken',
    'adminToken',
    'secretKey',
    '["x-api-key"]',
    'authtoken',
  ];
  const paths: string[] = [];
  for (const key of keys) {
    const dotted = key.startsWith('[') ? key : `.${key}`;
    paths.push(key.startsWith('[') ? `*${key}` : key, `*${dotted}`, `*.*${dotted}`);
  }
  paths.push(
    'req.headers.authorization',
    'req.headers.cookie',
    'req.headers["x-api-key"]',
    'headers.authorization',
  );
  return paths;
})();

/** Values shorter than this are not scrubbed: replacing every "ab" would make logs unreadable. */
export const MIN_SCRUB_LENGTH = 4;

/** A base64 run shorter than this is not scrubbed (it would match ordinary words). */
const MIN_BASE64_RUN = 8;

/**
 * The base64 text a secret's bytes always encode to, wherever they sit in what was encoded: for
 * each of the three alignments, the characters that depend on the secret's bytes alone (those
 * mixing in a byte before or after it differ with the neighbours). `Basic base64(key:)` carries the
 * first of them; the one or two characters at each end that also encode a neighbour stay.
 */
function base64Forms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const forms: string[] = [];
  for (let shift = 0; shift < 3; shift += 1) {
    const encoded = Buffer.concat([Buffer.alloc(shift), bytes]).toString('base64');
    // Character 4g+j of the encoding takes its bits from bytes 3g+[0,0,1,2][j] to 3g+[0,1,2,2][j].
    let run = '';
    for (let c = 0; c < encoded.length; c += 1) {
      const group = 3 * Math.floor(c / 4);
      const first = group + [0, 0, 1, 2][c % 4]!;
      const last = group + [0, 1, 2, 2][c % 4]!;
      if (first >= shift && last < shift + bytes.length) run += encoded[c];
    }
    if (run.length >= MIN_BASE64_RUN) forms.push(run, run.replace(/\+/g, '-').replace(/\//g, '_'));
  }
  return forms;
}

/**
 * Replaces every occurrence of a secret value with {@link REDACTED}: as written, JSON-escaped (`\/` too),
 * URL-encoded (`%2F` and `%2f`, a form's `+` for a space) and base64-encoded (a vendor answer, or
 * a proxy's error page, echoing the `Authorization: Basic` header the hub sent, or the query
 * string it called: each showed the key of an instance to whoever read the command; an attacker
 * audit).
 *
 * @example
 * ```ts
 * const scrub = secretScrubber(['s3cr3t-token']);
 * scrub('Authorization failed for s3cr3t-token'); // 'Authorization failed for [redacted]'
 * secretScrubber(['s3cr3t-token'], { cutEnds: true })('bad key s3cr3t'); // 'bad key [redacted]'
 * ```
 */
export function secretScrubber(
  secrets: readonly string[],
  options: { cutEnds?: boolean } = {},
): (text: string) => string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < MIN_SCRUB_LENGTH) continue;
    forms.add(secret);
    const escaped = JSON.stringify(secret).slice(1, -1);
    forms.add(escaped);
    // PHP's json_encode (and others) escape every slash: a text answer quoting a key with a "/"
    // in it kept the key whole (an attacker audit).
    forms.add(escaped.replace(/\//g, '\\/'));
    const encoded = encodeURIComponent(secret);
    const form = new URLSearchParams({ s: secret }).toString().slice(2);
    for (const text of [encoded, form]) {
      forms.add(text);
      forms.add(text.replace(/%[0-9A-F]{2}/g, (hex) => hex.toLowerCase()));
    }
    for (const text of base64Forms(secret)) forms.add(text);
  }
  if (forms.size === 0) return (text) => text;
  // Longest first, so a secret containing another is replaced whole.
  const alternatives = [...forms].sort((a, b) => b.length - a.length).map(escapeRegExp);
  const pattern = new RegExp(alternatives.join('|'), 'g');
  if (!options.cutEnds) return (text) => text.replace(pattern, REDACTED);
  // With `cutEnds`: a text cut before it reached the hub ends with the start of a secret where the
  // cut fell in it: a connector keeps the first 200 characters of a vendor's text answer for the
  // command's message (Cliniko's, BookingBug's), and a key quoted at character 190 kept its first 10
  // (an attacker audit). The longest such start of at least MIN_CUT_LENGTH characters is replaced
  // too. Not for log lines, which end with the line's own JSON: the check would cost every line a
  // pass over every secret's starts and find nothing.
  const starts = [...forms].filter((form) => form.length > MIN_CUT_LENGTH);
  const longest = Math.max(0, ...starts.map((form) => form.length));
  const cutSecret = (text: string): string => {
    const tail = text.slice(-longest);
    let cut = 0;
    for (const form of starts)
      for (let n = Math.min(form.length - 1, tail.length); n >= MIN_CUT_LENGTH && n > cut; n -= 1)
        if (tail.endsWith(form.slice(0, n))) cut = n;
    return cut === 0 ? text : `${text.slice(0, -cut)}${REDACTED}`;
  };
  return (text) => cutSecret(text.replace(pattern, REDACTED));
}

/** The shortest start of a secret replaced at the end of a text (shorter ones match ordinary words). */
const MIN_CUT_LENGTH = 6;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Where log lines go: anything with a `write(string)`. */
export interface LogSink {
  write(line: string): unknown;
}

export interface LoggerOptions {
  level?: LevelWithSilent;
  /** Human-readable lines; default: when the sink is a terminal. */
  pretty?: boolean;
  /** Secret values to scrub from every line (the `secrets` from `loadConfig`). */
  secrets?: readonly string[];
  /** Default `process.stdout`. */
  destination?: LogSink;
}

/**
 * A pino logger that redacts secret fields and scrubs secret values.
 *
 * @example
 * ```ts
 * const { config, secrets } = loaded;
 * const logger = createLogger({ level: config.logging.level, pretty: config.logging.pretty, secrets });
 * logger.info({ instance: 'docplanner-main' }, 'instance ready');
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const sink: LogSink = options.destination ?? process.stdout;
  const pretty = options.pretty ?? (sink === process.stdout && process.stdout.isTTY === true);
  const secrets: LogSecrets = { values: new Set(), scrub: (text) => text };
  addSecrets(secrets, options.secrets ?? []);
  const prettify = pretty
    ? prettyFactory({
        colorize: sink === process.stdout && process.stdout.isTTY === true,
        translateTime: 'SYS:HH:MM:ss.l',
      })
    : undefined;
  const stream: DestinationStream = {
    write(line: string) {
      sink.write(secrets.scrub(prettify ? prettify(line) : line));
    },
  };
  const logger = pino(
    {
      level: options.level ?? 'info',
      base: { service: 'switchyard' },
      redact: { paths: [...REDACT_PATHS], censor: REDACTED },
      // Request URLs can carry credentials (path keys, ?token=): fastify logs them through this.
      serializers: { req: requestSerializer },
      // A line written inside a span carries its trace_id and span_id (nothing while tracing is off).
      mixin: logTraceFields,
    },
    stream,
  );
  // Children are made by Object.create(parent) (pino's child), so they find it too.
  Object.defineProperty(logger, LOG_SECRETS, { value: secrets, enumerable: false });
  return logger;
}

/** The secret values a {@link createLogger} logger scrubs, and the scrubber made of them. */
interface LogSecrets {
  values: Set<string>;
  scrub: (text: string) => string;
}

const LOG_SECRETS = Symbol('switchyard.logSecrets');

function addSecrets(secrets: LogSecrets, values: readonly string[]): void {
  const before = secrets.values.size;
  for (const value of values)
    if (typeof value === 'string' && value.length >= MIN_SCRUB_LENGTH) secrets.values.add(value);
  if (secrets.values.size !== before) secrets.scrub = secretScrubber([...secrets.values]);
}

/**
 * Adds secret values to those every line of `logger` (and of its children) is scrubbed of: the
 * secrets of an instance created through the admin API, which the config file's `secrets` never
 * named, as the hub decrypts its settings (a vendor answer quoting its API key was logged as sent:
 * a commands audit). Values stay for the process's life, so a rotated-out secret stays scrubbed
 * too. A logger {@link createLogger} did not make is left as it is.
 *
 * @example
 * ```ts
 * addLogSecrets(logger, ['k-4f1b2c9d']);
 * logger.warn('vendor said: Invalid Authtoken k-4f1b2c9d'); // … Invalid Authtoken [redacted]
 * ```
 */
export function addLogSecrets(logger: Logger, values: readonly string[]): void {
  const secrets = (logger as unknown as Record<symbol, LogSecrets | undefined>)[LOG_SECRETS];
  if (secrets) addSecrets(secrets, values);
}

/** Adapts a pino logger to the connector's logger shape (`Logger` of @switchyard/core). */
export function connectorLogger(logger: Logger): ConnectorLogger {
  return {
    debug: (obj, msg) => logger.debug(obj, msg),
    info: (obj, msg) => logger.info(obj, msg),
    warn: (obj, msg) => logger.warn(obj, msg),
    error: (obj, msg) => logger.error(obj, msg),
  };
}
