// biome-ignore-all lint/suspicious/noTemplateCurlyInString: secret references are written ${env:...} on purpose.
/**
 * Loads `switchyard.yaml`: parses it keeping positions, resolves secret references, validates it
 * against the assembled schema and the rules a schema cannot say (unique ids, known instances,
 * connector capabilities), and reports every problem as `file:line:column path: message`.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { type Connector, createAjv, isJsonObject, type JsonObject, type JsonSchema } from '@switchyard/core';
import { LineCounter, parseDocument } from 'yaml';
import { type InputError, suggest } from '../admin/input.ts';
import { validateSchedule } from '../delivery/retry-schedule.ts';
import { isValidSecret } from '../delivery/sign.ts';
import { instanceInputErrors } from '../instances/input.ts';
import { uncallableSettings, unverifiablePushes } from '../instances/settings.ts';
import {
  subscriptionInputErrors,
  subscriptionRuleErrors,
  unknownInstanceMessage,
} from '../subscriptions/input.ts';
import { SUBSCRIPTION_FIELDS } from '../subscriptions/schema.ts';
import { INSTANCE_FILE_PATHS, instanceInput, resolveInstance } from './instances.ts';
import {
  displayPath,
  type FilePaths,
  fileSegments,
  type PathSegment,
  pointerToSegments,
  positionOf,
} from './positions.ts';
import { buildConfigSchema, CONFIG_DEFAULTS, DATABASE_URL_PATTERN } from './schema.ts';
import { hasReference, resolveReferences } from './secrets.ts';
import { resolveSubscription, SUBSCRIPTION_FILE_PATHS } from './subscriptions.ts';
import type {
  ConfigProblem,
  LoadResult,
  ResolvedConfig,
  ResolvedDatabase,
  ResolvedInstance,
  ResolvedSubscription,
} from './types.ts';
import { configDurationMs, configDurationText, configSizeBytes, durationMessage } from './units.ts';

/** The CLI (a face that reads config, not admin) hints with the one nearest-name rule. */
export { suggest };

/** What the loader needs besides the file. */
export interface LoadOptions {
  /** Environment for `${env:...}` and `DATABASE_URL`; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** The connectors instances may name (normally `shippedConnectors`). */
  connectors: readonly Connector[];
  /**
   * Which secret references must resolve: `all` (default: `start`, `validate`), or `database` for
   * a command that only reads and writes the database (`events`, `commands list`, `replay`…): then
   * `database.url` and `secretKey` must, and any other reference that does not resolve is left as
   * written, not a problem (an operator listing commands needs no vendor's credentials); or
   * `{ instance }` for a command that only presents one instance's credentials to a running hub
   * (`push`): that instance's settings must resolve, and nothing else need (neither `secretKey`
   * nor `database.url`, which such a command never uses); or `{ subscription }` for a command that
   * only serves one webhook subscription's URL (`listen`; without an id, the first webhook
   * subscription): only that subscription's secrets must resolve.
   */
  resolve?: 'all' | 'database' | { instance: string } | { subscription?: string };
  /**
   * A file with problems also says that a real Postgres needs `secretKey`, when it gives none: what
   * `start` would refuse besides (the CLI sets it, so one run of `validate` lists everything; a
   * file without other problems hears it from {@link secretKeyProblem}).
   */
  reportSecretKey?: boolean;
}

/** The secret fields a database-only command needs resolved ({@link LoadOptions.resolve}). */
const DATABASE_SECRETS = new Set(['/database/url', '/secretKey']);

/** Whether a secret field that does not resolve is a problem under {@link LoadOptions.resolve}. */
function mustResolve(
  resolve: LoadOptions['resolve'],
  segments: readonly PathSegment[],
  data: JsonObject,
): boolean {
  if (resolve === undefined || resolve === 'all') return true;
  if (resolve === 'database') return DATABASE_SECRETS.has(pointerOf(segments));
  if (typeof segments[1] !== 'number') return false;
  if ('instance' in resolve) {
    const instances = Array.isArray(data.instances) ? data.instances : [];
    return segments[0] === 'instances' && obj(instances[segments[1]]).id === resolve.instance;
  }
  if (segments[0] !== 'subscriptions') return false;
  const subscriptions = Array.isArray(data.subscriptions) ? data.subscriptions : [];
  const index =
    resolve.subscription === undefined
      ? subscriptions.findIndex((s) => obj(s).kind === 'webhook')
      : subscriptions.findIndex((s) => obj(s).id === resolve.subscription);
  return segments[1] === index;
}

/**
 * Reads and checks a config file. Never throws for a problem in the file: every problem comes back,
 * located, and no problem message contains a resolved secret.
 *
 * @example
 * ```ts
 * const result = await loadConfig('switchyard.yaml', { connectors: shippedConnectors });
 * if (!result.ok) for (const p of result.problems) console.error(formatProblem(p));
 * else startHub(result.config, createLogger({ secrets: result.secrets }));
 * ```
 */
export async function loadConfig(path: string, options: LoadOptions): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (code ?? 'unreadable');
    return {
      ok: false,
      problems: [
        { file: path, line: 1, column: 1, path: '', message: `cannot read the config file (${why})` },
      ],
      secrets: [],
    };
  }
  return parseConfig(text, { ...options, file: path });
}

/**
 * Checks config text as if it were the file `file` (relative `${file:...}` paths and the embedded
 * data directory resolve against that file's directory).
 *
 * @example
 * ```ts
 * const result = parseConfig('version: 1\n', { file: 'inline.yaml', connectors: [] });
 * ```
 */
export function parseConfig(text: string, options: LoadOptions & { file: string }): LoadResult {
  const { file, connectors } = options;
  const env = options.env ?? process.env;
  const absolute = isAbsolute(file) ? file : resolve(file);
  const baseDir = dirname(absolute);
  const byName = new Map(connectors.map((c) => [c.name, c]));

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  const report = (
    segments: readonly PathSegment[],
    message: string,
    opts?: { preferKey?: boolean; at?: readonly PathSegment[] },
  ) => {
    const pos = positionOf(doc, lineCounter, opts?.at ?? segments, opts);
    const problem = { file, line: pos.line, column: pos.column, path: displayPath(segments), message };
    const key = `${problem.line}:${problem.column}:${problem.path}:${message}`;
    if (seen.has(key)) return;
    seen.add(key);
    problems.push(problem);
  };
  const fail = (): LoadResult => ({ ok: false, problems: sortProblems(problems), secrets: [] });

  if (doc.errors.length > 0) {
    const lines = text.split('\n');
    const positions = doc.errors.map((error) => ({ error, pos: lineCounter.linePos(error.pos[0]) }));
    // `{ apiKey: ${env:KEY} }` is the likeliest YAML error in this file: inside { } or [ ] an
    // unquoted `{` opens a mapping, and the parser reports a cascade of token errors from there on
    // that say nothing about the cause. Say it once, at the reference, instead.
    const unquoted = positions.find(({ pos }) => UNQUOTED_FLOW_REFERENCE.test(lines[pos.line - 1] ?? ''));
    if (unquoted) {
      const line = lines[unquoted.pos.line - 1] ?? '';
      problems.push({
        file,
        line: unquoted.pos.line,
        column: line.indexOf('${') + 1,
        path: '',
        message:
          'a secret reference inside { } or [ ] must be quoted, e.g. { apiKey: "${env:KEY}" } (unquoted, YAML reads its { as the start of a mapping)',
      });
      return fail();
    }
    for (const { error, pos } of positions) {
      problems.push({ file, line: pos.line, column: pos.col, path: '', message: yamlMessage(error.message) });
    }
    return fail();
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    report([], `cannot read the YAML: ${yamlMessage((error as Error).message)}`);
    return fail();
  }
  if (!isJsonObject(raw)) {
    report([], 'the file must be a YAML mapping, starting with "version: 1"');
    return fail();
  }

  // Secrets first: the schema checks the resolved values (a `whsec_` pattern cannot match `${env:X}`).
  const data = structuredClone(raw) as JsonObject;
  const secrets = new Set<string>();
  const unresolved: string[] = [];
  walkStrings(data, [], (value, segments, replace) => {
    // Settings of an unknown connector cannot be checked: the unknown name is the problem to report.
    if (segments[0] === 'instances' && segments[2] === 'settings' && !connectorOf(data, segments[1], byName))
      return;
    if (isSecretPath(segments, data, byName)) {
      const result = resolveReferences(value, { env, baseDir });
      if (!result.ok) {
        if (mustResolve(options.resolve, segments, data)) report(segments, result.errors.join('; '));
        unresolved.push(pointerOf(segments));
        return;
      }
      for (const s of result.secrets) secrets.add(s);
      secrets.add(result.value);
      replace(result.value);
    } else if (hasReference(value)) {
      report(
        segments,
        'secret references (${env:...}, ${file:...}) are only allowed in secret fields: server.adminToken, secretKey, database.url, subscriptions[].secrets, telemetry.traces.headers and the connector settings marked secret (docs/configuration.md, Reference); write any other value as it is',
      );
      unresolved.push(pointerOf(segments));
    } else if (value.includes('$${')) {
      // No reference here, so every `$${` is the escape: a literal `${` in any field, as in the
      // secret ones (kept as `$${`, a value needing `${` could not be written at all).
      replace(value.replaceAll('$${', '${'));
    }
  });
  const suppressed = (segments: readonly PathSegment[]) => {
    const pointer = pointerOf(segments);
    return unresolved.some((u) => pointer === u || pointer.startsWith(`${u}/`));
  };

  const validate = validatorFor(connectors);
  if (!validate(data)) {
    const errors = validate.errors ?? [];
    // A value that matches none of an anyOf with a message of its own (an address or CIDR range):
    // that message, once, not one line per branch it missed.
    const explained = errors.filter(
      (e) =>
        e.keyword === 'anyOf' &&
        isJsonObject(e.parentSchema) &&
        typeof e.parentSchema['x-message'] === 'string',
    );
    for (const error of errors) {
      const segments = pointerToSegments(error.instancePath);
      if (suppressed(segments) || error.keyword === 'if') continue;
      if (
        explained.some(
          (a) =>
            a !== error &&
            a.instancePath === error.instancePath &&
            error.schemaPath.startsWith(`${a.schemaPath}/`),
        )
      )
        continue;
      // Unknown connector names get their own message below, with the known names.
      if (error.keyword === 'enum' && isInstanceConnector(segments)) continue;
      reportAjvError(error, segments, report);
    }
  }

  // What the schema found, before the rules: an instance the rules fault (its mode, a `pull:` in
  // push mode) still has its values checked, so one run lists its gate deadline too.
  const schemaProblems = [...problems];
  checkRules(data, raw, byName, report, suppressed);
  checkConvertedInputs(
    data,
    byName,
    { instances: schemaProblems, subscriptions: problems },
    report,
    suppressed,
  );
  checkEnvironmentDatabase(data, env, report);
  if (problems.length > 0 && options.reportSecretKey) {
    // What `start` would refuse besides, so one run of `validate` lists it with the rest
    // (secretKeyProblem says it for a file without other problems).
    const database = obj(data.database);
    // Both url and embedded is its own problem: which Postgres is meant is not known.
    const fromFile = database.url !== undefined && database.embedded === undefined;
    const fromEnv = database.url === undefined && env.DATABASE_URL !== undefined && env.DATABASE_URL !== '';
    if ((fromFile || fromEnv) && !data.secretKey && !unresolved.includes('/secretKey'))
      report(['secretKey'], secretKeyMessage(fromFile ? 'file' : 'env'), {
        at: fromFile ? ['database', 'url'] : data.database !== undefined ? ['database'] : [],
        preferKey: !fromFile,
      });
  }
  if (problems.length > 0) return fail();

  const secretList = [...secrets].filter((s) => s !== '');
  const database = obj(data.database);
  // Where the file says which Postgres: the url it gives, else (DATABASE_URL) its `database:` entry
  // or, without one, where a missing top-level field is reported.
  const declaredAt = positionOf(
    doc,
    lineCounter,
    typeof database.url === 'string' ? ['database', 'url'] : data.database !== undefined ? ['database'] : [],
    { preferKey: typeof database.url !== 'string' },
  );
  const secretKeyAt = positionOf(doc, lineCounter, typeof data.secretKey === 'string' ? ['secretKey'] : []);
  const config = resolveConfig(data, {
    absolute,
    baseDir,
    env,
    byName,
    secrets: secretList,
    declaredAt,
    secretKeyAt,
  });
  return { ok: true, config, problems: [], secrets: secretList };
}

/**
 * DATABASE_URL stands in for `database.url` when the file gives none, so it must be what that field
 * must be. Its value is never shown (it may hold a password).
 */
function checkEnvironmentDatabase(
  data: JsonObject,
  env: Readonly<Record<string, string | undefined>>,
  report: Report,
): void {
  const url = env.DATABASE_URL;
  if (url === undefined || url === '' || typeof obj(data.database).url === 'string') return;
  if (new RegExp(DATABASE_URL_PATTERN).test(url)) return;
  report(
    ['database'],
    'the DATABASE_URL environment variable, used because the file gives no database.url, must be a postgres:// URL like database.url',
    { preferKey: true },
  );
}

/**
 * The problem with a config whose database is a real Postgres (`database.url` or DATABASE_URL) and
 * which gives no `secretKey`; undefined when there is none. The key seals the secrets the hub
 * stores, and every process of a deployment must use the same one, so only an embedded
 * installation may have one generated. `switchyard validate` and every command that opens the
 * database (`start` through `resolveSecretKey`) ask this one function, so they agree, and the
 * problem points at the line that chose the database.
 *
 * @example
 * ```ts
 * const loaded = await loadConfig('switchyard.yaml', { connectors: shippedConnectors });
 * const problem = loaded.ok ? secretKeyProblem(loaded.config) : undefined;
 * if (problem) console.error(formatProblem(problem)); // switchyard.yaml:5:8 secretKey: is required with a real Postgres ...
 * ```
 */
export function secretKeyProblem(config: ResolvedConfig): ConfigProblem | undefined {
  if (config.secretKey || config.database.kind !== 'url') return undefined;
  return {
    file: config.file,
    line: config.database.declaredAt.line,
    column: config.database.declaredAt.column,
    path: 'secretKey',
    message: secretKeyMessage(config.database.from),
  };
}

/** Why a `secretKey` is needed, by where the Postgres URL came from. */
function secretKeyMessage(from: 'file' | 'env'): string {
  const because = from === 'file' ? 'database.url is set' : 'DATABASE_URL is set and the file gives no url';
  return `is required with a real Postgres (${because}): it encrypts the secrets the hub stores, and every process of the deployment needs the same one. Give a random string of 16+ characters, e.g. secretKey: \${env:SWITCHYARD_SECRET_KEY}`;
}

/**
 * One problem as one line: `file:line:column path: message`.
 *
 * @example
 * ```ts
 * formatProblem(p); // 'switchyard.yaml:12:16 instances[2].connector: unknown connector "docplaner"; ...'
 * ```
 */
export function formatProblem(problem: ConfigProblem): string {
  const where = `${problem.file}:${problem.line}:${problem.column}`;
  return problem.path === '' ? `${where} ${problem.message}` : `${where} ${problem.path}: ${problem.message}`;
}

type Report = (
  segments: readonly PathSegment[],
  message: string,
  opts?: { preferKey?: boolean; at?: readonly PathSegment[] },
) => void;

function sortProblems(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
}

/**
 * A `${…}` reference written unquoted after a flow collection's `{` or `[` on the same line (quoted
 * values before it skipped whole), starting a value: after the opener, a space, `,` or `:`.
 */
const UNQUOTED_FLOW_REFERENCE = /[{[](?:"[^"]*"|'[^']*'|[^"'#])*?(?<=[\s,:[{])\$\{/;

function yamlMessage(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

function pointerOf(segments: readonly PathSegment[]): string {
  return segments.map((s) => `/${String(s).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function isInstanceConnector(segments: readonly PathSegment[]): boolean {
  return segments.length === 3 && segments[0] === 'instances' && segments[2] === 'connector';
}

type ValidateFunction = ReturnType<ReturnType<typeof createAjv>['compile']>;
type ErrorObject = NonNullable<ValidateFunction['errors']>[number];

const validators = new Map<string, ValidateFunction>();

/**
 * The bounds a duration setting of the schema may carry (config/schema.ts), and how a value is held
 * against each: the one place the rule is checked.
 */
const DURATION_BOUND_KEYWORDS = {
  'x-duration-min': (ms: number, bound: number) => ms >= bound,
  'x-duration-max': (ms: number, bound: number) => ms <= bound,
} as const;

function validatorFor(connectors: readonly Connector[]): ValidateFunction {
  const key = connectors.map((c) => `${c.name}@${c.version}`).join(',');
  let validate = validators.get(key);
  if (!validate) {
    // strict: false because connector schemas may carry annotations of their own (x-secret and the like).
    const ajv = createAjv({ allErrors: true, verbose: true, strict: false, useDefaults: true });
    for (const [keyword, holds] of Object.entries(DURATION_BOUND_KEYWORDS)) {
      ajv.addKeyword({
        keyword,
        type: 'string',
        schemaType: 'string',
        // A value that is no duration is the pattern's problem, reported once.
        validate: (bound: string, value: string) => {
          const ms = configDurationMs(value);
          return ms === undefined || holds(ms, configDurationMs(bound)!);
        },
      });
    }
    validate = ajv.compile(buildConfigSchema(connectors));
    validators.set(key, validate);
  }
  return validate;
}

function walkStrings(
  value: unknown,
  segments: PathSegment[],
  visit: (value: string, segments: PathSegment[], replace: (next: string) => void) => void,
): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => {
      if (typeof item === 'string') visit(item, [...segments, i], (next) => (value[i] = next));
      else walkStrings(item, [...segments, i], visit);
    });
  } else if (isJsonObject(value)) {
    for (const [key, item] of Object.entries(value)) {
      if (typeof item === 'string') visit(item, [...segments, key], (next) => (value[key] = next));
      else walkStrings(item, [...segments, key], visit);
    }
  }
}

/**
 * The secrets of the trace export the file does not mark: the values of `OTEL_EXPORTER_OTLP_HEADERS`
 * and `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (`name=value,…`, values percent-encoded: the OpenTelemetry
 * SDK environment variable specification), and the password of the file's endpoint and of
 * `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` (the exporter sends `user:password@` as Basic auth), each as
 * it is written and as it is sent.
 *
 * @example
 * ```ts
 * otlpSecrets(undefined, { OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=k%2F0123456789' }); // ['k%2F0123456789', 'k/0123456789']
 * otlpSecrets('https://u:pw-0123456789@otel:4318/v1/traces', {}); // ['pw-0123456789']
 * ```
 */
export function otlpSecrets(
  endpoint: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string[] {
  const out = new Set<string>();
  const add = (raw: string) => {
    if (raw === '') return;
    out.add(raw);
    try {
      out.add(decodeURIComponent(raw));
    } catch {
      // Not percent-encoded as the format says: the exporter sends it as written.
    }
  };
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    for (const pair of (env[name] ?? '').split(',')) {
      const eq = pair.indexOf('=');
      if (eq >= 0) add(pair.slice(eq + 1).trim());
    }
  }
  for (const url of [endpoint, env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, env.OTEL_EXPORTER_OTLP_ENDPOINT]) {
    if (url === undefined || !URL.canParse(url)) continue;
    add(new URL(url).password);
  }
  return [...out];
}

/** Fields that hold secrets: the hub's own, and connector settings marked `x-secret`. */
function isSecretPath(
  segments: readonly PathSegment[],
  data: JsonObject,
  byName: Map<string, Connector>,
): boolean {
  const [a, b, c, d] = segments;
  if (segments.length === 2 && a === 'server' && b === 'adminToken') return true;
  if (segments.length === 1 && a === 'secretKey') return true;
  if (segments.length === 2 && a === 'database' && b === 'url') return true;
  if (segments.length === 4 && a === 'telemetry' && b === 'traces' && c === 'headers') return true;
  if (
    segments.length === 4 &&
    a === 'subscriptions' &&
    typeof b === 'number' &&
    c === 'secrets' &&
    typeof d === 'number'
  )
    return true;
  if (a === 'instances' && c === 'settings' && segments.length > 3) {
    const connector = connectorOf(data, b, byName);
    return connector ? schemaMarksSecret(connector.configSchema, segments.slice(3)) : false;
  }
  return false;
}

function connectorOf(
  data: JsonObject,
  index: PathSegment | undefined,
  byName: Map<string, Connector>,
): Connector | undefined {
  const instance =
    Array.isArray(data.instances) && typeof index === 'number' ? data.instances[index] : undefined;
  const name = isJsonObject(instance) ? instance.connector : undefined;
  return typeof name === 'string' ? byName.get(name) : undefined;
}

/** Whether the schema marks the value at `path` with `x-secret` (following local refs and combinators). */
export function schemaMarksSecret(root: JsonSchema, path: readonly PathSegment[]): boolean {
  const lookup = (ref: string): unknown => {
    let node: unknown = root;
    for (const part of pointerToSegments(ref.slice(1))) {
      node =
        isJsonObject(node) || Array.isArray(node)
          ? (node as Record<string, unknown>)[String(part)]
          : undefined;
    }
    return node;
  };
  const visit = (schema: unknown, i: number, depth: number): boolean => {
    if (!isJsonObject(schema) || depth > 32) return false;
    if (
      typeof schema.$ref === 'string' &&
      schema.$ref.startsWith('#/') &&
      visit(lookup(schema.$ref), i, depth + 1)
    )
      return true;
    for (const key of ['allOf', 'anyOf', 'oneOf'] as const) {
      const list = schema[key];
      if (Array.isArray(list) && list.some((sub) => visit(sub, i, depth + 1))) return true;
    }
    if (visit(schema.then, i, depth + 1) || visit(schema.else, i, depth + 1)) return true;
    if (i === path.length) return schema['x-secret'] === true;
    const segment = path[i]!;
    if (typeof segment === 'number') {
      const prefix = schema.prefixItems;
      if (Array.isArray(prefix) && segment < prefix.length) return visit(prefix[segment], i + 1, depth + 1);
      return visit(schema.items, i + 1, depth + 1);
    }
    const properties = schema.properties;
    if (isJsonObject(properties) && segment in properties)
      return visit(properties[segment], i + 1, depth + 1);
    const patterns = schema.patternProperties;
    if (isJsonObject(patterns)) {
      for (const [pattern, sub] of Object.entries(patterns)) {
        if (new RegExp(pattern, 'u').test(segment) && visit(sub, i + 1, depth + 1)) return true;
      }
    }
    return visit(schema.additionalProperties, i + 1, depth + 1);
  };
  return visit(root, 0, 0);
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  array: 'a list',
  null: 'empty',
};

function reportAjvError(error: ErrorObject, segments: PathSegment[], report: Report): void {
  const parent = isJsonObject(error.parentSchema) ? error.parentSchema : undefined;
  const custom = typeof parent?.['x-message'] === 'string' ? parent['x-message'] : undefined;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required': {
      const missing = String(params.missingProperty);
      report([...segments, missing], custom ?? 'is required', { at: segments });
      return;
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      // A mapping whose keys follow a pattern (header names) says what its keys must be.
      if (custom) {
        report([...segments, extra], custom, { preferKey: true });
        return;
      }
      const known = isJsonObject(parent?.properties) ? Object.keys(parent.properties) : [];
      const hint = suggest(extra, known);
      // Nothing close (`connectors:` for `instances:`): name the fields that may be there.
      const listed = hint
        ? `; did you mean "${hint}"?`
        : known.length > 0
          ? `; fields here: ${known.join(', ')}`
          : '';
      report([...segments, extra], `unknown field "${extra}"${listed}`, { preferKey: true });
      return;
    }
  }
  const secret = parent?.['x-secret'] === true;
  if (custom) {
    // A value outside a long list (the event catalog): its own message, and the nearest value.
    const hint =
      error.keyword === 'enum' && !secret && typeof error.data === 'string'
        ? suggest(error.data, (params.allowedValues as unknown[]).map(String))
        : undefined;
    report(segments, hint ? `${custom}; did you mean "${hint}"?` : custom);
    return;
  }
  switch (error.keyword) {
    case 'type': {
      if (parent?.['x-duration'] === true) {
        report(segments, durationMessage(error.data));
        return;
      }
      const types = String(params.type).split(',');
      report(segments, `must be ${types.map((t) => TYPE_NAMES[t] ?? t).join(' or ')}`);
      return;
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v));
      const hint =
        !secret && typeof error.data === 'string'
          ? suggest(
              error.data,
              allowed.map((v) => JSON.parse(v)),
            )
          : undefined;
      report(segments, `must be one of ${allowed.join(', ')}${hint ? `; did you mean "${hint}"?` : ''}`);
      return;
    }
    case 'const':
      report(segments, `must be ${JSON.stringify(params.allowedValue)}`);
      return;
    case 'pattern':
      report(
        segments,
        parent?.['x-duration'] === true
          ? durationMessage(error.data)
          : `must match the pattern ${String(params.pattern)}`,
      );
      return;
    case 'format':
      report(segments, `must be a valid ${String(params.format)}`);
      return;
    case 'x-duration-min':
      report(
        segments,
        `${JSON.stringify(error.data)} is too short: must be at least ${String(error.schema)}`,
      );
      return;
    case 'x-duration-max':
      report(segments, `${JSON.stringify(error.data)} is too long: must be at most ${String(error.schema)}`);
      return;
    case 'false schema':
      report(segments, 'is not allowed here');
      return;
    default:
      // ajv's own messages describe the rule, never the value.
      report(segments, error.message ?? 'is invalid');
  }
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/**
 * Each instance and subscription entry the file's schema found nothing wrong with, converted to the
 * hub's input and checked by the hub's own check (one rule set for the file, the routes and the
 * library).
 */
function checkConvertedInputs(
  data: JsonObject,
  byName: ReadonlyMap<string, Connector>,
  // Per section, the problems that make an entry unfit to convert. A subscription's rules and its
  // input check overlap (a retry schedule's bounds), so there every problem counts.
  problems: { instances: readonly ConfigProblem[]; subscriptions: readonly ConfigProblem[] },
  report: Report,
  suppressed: (segments: readonly PathSegment[]) => boolean,
): void {
  const check = (section: string, i: number, errors: readonly InputError[], paths: FilePaths) => {
    for (const error of errors) {
      const segments = fileSegments([section, i], error.instancePath, paths);
      // A secret reference left as written (a command that does not need it): not a value to check.
      if (suppressed(segments)) continue;
      const limit = (error.params as { limit?: unknown }).limit;
      if (paths.durations.some((d) => d.test(error.instancePath)) && typeof limit === 'number') {
        report(
          segments,
          `must be ${error.keyword === 'maximum' ? 'at most' : 'at least'} ${configDurationText(limit)}`,
        );
      } else {
        reportAjvError(error, segments, report);
      }
    }
  };
  const clean = (section: 'instances' | 'subscriptions', i: number) => {
    const at = `${section}[${i}]`;
    return !problems[section].some((p) => p.path === at || p.path.startsWith(`${at}.`));
  };
  list(data.instances).forEach((item, i) => {
    const connector = isJsonObject(item) ? byName.get(String(item.connector)) : undefined;
    if (!connector || !clean('instances', i)) return;
    const { managedBy: _, ...input } = instanceInput(resolveInstance(item, connector));
    check('instances', i, instanceInputErrors(input), INSTANCE_FILE_PATHS);
    // A URL setting the vendor calls would never reach (a metadata or unspecified address): the
    // API refuses it when saved (instances/settings.ts), in the same words.
    const settings = isJsonObject(input.settings) ? input.settings : {};
    for (const { path, message } of uncallableSettings(connector, settings)) {
      const segments: PathSegment[] = ['instances', i, 'settings', ...pointerToSegments(path)];
      if (!suppressed(segments)) report(segments, message);
    }
  });
  list(data.subscriptions).forEach((item, i) => {
    if (!isJsonObject(item) || !clean('subscriptions', i)) return;
    const { managedBy: _, ...input } = resolveSubscription(item);
    const errors = subscriptionInputErrors('create', input);
    // The hub's rules on the whole subscription (FHIR formats), once its fields are each valid.
    check(
      'subscriptions',
      i,
      errors.length > 0
        ? errors
        : subscriptionRuleErrors({
            kind: input.kind ?? 'webhook',
            format: input.format ?? 'cloudevents',
            eventTypes: input.eventTypes ?? [],
            approver: input.approver ?? false,
          }),
      SUBSCRIPTION_FILE_PATHS,
    );
  });
}

/**
 * The rules a JSON Schema cannot express. Each guards its own types: the schema reports those.
 * `written` is the file as written, `data` with the schema's defaults applied.
 */
function checkRules(
  data: JsonObject,
  written: JsonObject,
  byName: Map<string, Connector>,
  report: Report,
  suppressed: (segments: readonly PathSegment[]) => boolean,
): void {
  const known = [...byName.keys()].sort();
  const instances = list(data.instances);
  const subscriptions = list(data.subscriptions);

  // Node refuses a headers timeout longer than the whole request's, and the server would cut the
  // file's value silently. A default headers timeout cut to a shorter request timeout is no
  // surprise, so only a value the file wrote counts (`written`: before the schema's defaults).
  const timeouts = obj(obj(data.server).timeouts);
  const request = str(timeouts.request) ?? CONFIG_DEFAULTS.server.timeouts.request;
  const headersMs = configDurationMs(str(obj(obj(written.server).timeouts).headers) ?? '');
  const requestMs = configDurationMs(request);
  if (headersMs !== undefined && requestMs !== undefined && headersMs > requestMs) {
    report(
      ['server', 'timeouts', 'headers'],
      `must be at most server.timeouts.request (${request}): the headers are part of the request`,
    );
  }

  instances.forEach((instance, i) => {
    if (!isJsonObject(instance)) return;
    const name = instance.connector;
    if (typeof name !== 'string') return;
    const connector = byName.get(name);
    if (!connector) {
      const hint = suggest(name, known);
      report(
        ['instances', i, 'connector'],
        `unknown connector "${name}"; known: ${known.join(', ') || '(none)'}${hint ? `; did you mean "${hint}"?` : ''}`,
      );
      return;
    }
    const mode = typeof instance.mode === 'string' ? instance.mode : connector.push ? 'push' : 'pull';
    if ((mode === 'pull' || mode === 'both') && !connector.pull) {
      report(
        ['instances', i, 'mode'],
        `connector "${name}" has no pull (the vendor offers no queue to poll); use mode: push`,
      );
    }
    const cannotPull =
      (mode === 'pull' || mode === 'both') && isJsonObject(instance.settings)
        ? connector.pull?.unavailable?.(instance.settings)
        : undefined;
    if (cannotPull !== undefined) report(['instances', i, 'settings'], `mode ${mode}: ${cannotPull}`);
    if ((mode === 'push' || mode === 'both') && !connector.push) {
      report(
        ['instances', i, 'mode'],
        `connector "${name}" cannot be pushed to${instance.mode === undefined ? ' (push is the default)' : ''}; use mode: pull`,
      );
    }
    const unverifiable = unverifiablePushes(
      connector,
      mode,
      String(instance.id),
      typeof obj(data.server).publicUrl === 'string' ? String(obj(data.server).publicUrl) : undefined,
    );
    if (unverifiable !== undefined) report(['instances', i, 'connector'], unverifiable);
    if (instance.pull !== undefined && mode === 'push') {
      report(['instances', i, 'pull'], 'pull settings need mode: pull or both', { preferKey: true });
    }
    if (instance.gate !== undefined && !connector.gate) {
      report(['instances', i, 'gate'], `connector "${name}" has no approval requests; remove gate`, {
        preferKey: true,
      });
    }
  });

  const ids = (items: unknown[], section: string) => {
    const first = new Map<string, number>();
    items.forEach((item, i) => {
      if (!isJsonObject(item) || typeof item.id !== 'string') return;
      const earlier = first.get(item.id);
      if (earlier === undefined) first.set(item.id, i);
      else report([section, i, 'id'], `duplicate id "${item.id}": already used by ${section}[${earlier}]`);
    });
    return first;
  };
  const instanceIds = ids(instances, 'instances');
  ids(subscriptions, 'subscriptions');

  const checkSources = (value: unknown, segments: PathSegment[]) => {
    list(value).forEach((source, j) => {
      if (typeof source !== 'string' || instanceIds.has(source)) return;
      report([...segments, j], unknownInstanceMessage(source, [...instanceIds.keys()]));
    });
  };
  subscriptions.forEach((subscription, i) => {
    if (!isJsonObject(subscription)) return;
    checkSources(subscription.sources, ['subscriptions', i, 'sources']);
    if (isJsonObject(subscription.approver)) {
      checkSources(subscription.approver.sources, ['subscriptions', i, 'approver', 'sources']);
    }
    const schedule = isJsonObject(subscription.retry) ? subscription.retry.schedule : undefined;
    if (
      Array.isArray(schedule) &&
      schedule.every((d) => typeof d === 'string' && configDurationMs(d) !== undefined)
    ) {
      try {
        validateSchedule(schedule);
      } catch (error) {
        // An entry's bounds only: the schedule's length (none, over 100) is the schema's problem
        // (minItems, maxItems), reported once and in the admin API's words.
        const index = (error as { details?: { index?: unknown } }).details?.index;
        if (typeof index === 'number') {
          report(['subscriptions', i, 'retry', 'schedule', index], (error as Error).message);
        }
      }
    }
    list(subscription.secrets).forEach((secret, j) => {
      const segments = ['subscriptions', i, 'secrets', j];
      if (typeof secret !== 'string' || suppressed(segments)) return;
      // In the admin API's words (the schema's x-message), never the secret itself: the file said
      // "must decode to 24..64 bytes, it decodes to 3" where the route said what a secret is.
      if (!isValidSecret(secret)) report(segments, SUBSCRIPTION_FIELDS.secrets.items['x-message']);
    });
  });
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A number the schema already checked, or the schema's default. */
function num(value: unknown, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}

function obj(value: unknown): JsonObject {
  return isJsonObject(value) ? value : {};
}

function ms(value: unknown, fallback: string): number {
  return configDurationMs(str(value) ?? fallback) ?? configDurationMs(fallback)!;
}

/** The validated file data → the typed config the hub runs with. */
function resolveConfig(
  data: JsonObject,
  ctx: {
    absolute: string;
    baseDir: string;
    env: Readonly<Record<string, string | undefined>>;
    byName: Map<string, Connector>;
    secrets: string[];
    declaredAt: { line: number; column: number };
    secretKeyAt: { line: number; column: number };
  },
): ResolvedConfig {
  const server = obj(data.server);
  const database = obj(data.database);
  const retention = obj(data.retention);
  const logging = obj(data.logging);
  const workers = obj(data.workers);
  const commands = obj(data.commands);
  const commandRetries = list(commands.retrySchedule).map(String);
  const traces = obj(obj(data.telemetry).traces);

  let resolvedDatabase: ResolvedDatabase;
  const envUrl = ctx.env.DATABASE_URL;
  const startupWaitMs = ms(database.startupWait, CONFIG_DEFAULTS.database.startupWait);
  const databasePoolSize =
    typeof database.poolSize === 'number' ? database.poolSize : CONFIG_DEFAULTS.database.poolSize;
  if (typeof database.url === 'string') {
    resolvedDatabase = {
      kind: 'url',
      url: database.url,
      from: 'file',
      declaredAt: ctx.declaredAt,
      startupWaitMs,
    };
  } else if (envUrl !== undefined && envUrl !== '') {
    resolvedDatabase = { kind: 'url', url: envUrl, from: 'env', declaredAt: ctx.declaredAt, startupWaitMs };
    ctx.secrets.push(envUrl);
  } else {
    const dataDir = str(obj(database.embedded).dataDir) ?? CONFIG_DEFAULTS.embeddedDataDir;
    resolvedDatabase = { kind: 'embedded', dataDir: resolve(ctx.baseDir, dataDir) };
  }

  const instances: ResolvedInstance[] = list(data.instances).map((item) =>
    resolveInstance(item, ctx.byName.get(String(obj(item).connector))!),
  );

  const subscriptions: ResolvedSubscription[] = list(data.subscriptions).map(resolveSubscription);

  const config: ResolvedConfig = {
    file: ctx.absolute,
    secretKeyAt: ctx.secretKeyAt,
    server: {
      host: str(server.host) ?? CONFIG_DEFAULTS.server.host,
      port: num(server.port, CONFIG_DEFAULTS.server.port),
      bodyLimitBytes: configSizeBytes(str(server.bodyLimit) ?? CONFIG_DEFAULTS.server.bodyLimit)!,
      trustedProxies: list(server.trustedProxies).map(String),
      timeouts: {
        headersMs: ms(obj(server.timeouts).headers, CONFIG_DEFAULTS.server.timeouts.headers),
        bodyMs: ms(obj(server.timeouts).body, CONFIG_DEFAULTS.server.timeouts.body),
        requestMs: ms(obj(server.timeouts).request, CONFIG_DEFAULTS.server.timeouts.request),
        lingeringMs: ms(obj(server.timeouts).lingering, CONFIG_DEFAULTS.server.timeouts.lingering),
        lingeringIdleMs: ms(
          obj(server.timeouts).lingeringIdle,
          CONFIG_DEFAULTS.server.timeouts.lingeringIdle,
        ),
      },
      unauthenticatedBodyBytes: configSizeBytes(
        str(server.unauthenticatedBodyBytes) ?? CONFIG_DEFAULTS.server.unauthenticatedBodyBytes,
      )!,
    },
    database: resolvedDatabase,
    databasePoolSize,
    instances,
    subscriptions,
    retention: {
      inboundMessagesMs: ms(retention.inboundMessages, CONFIG_DEFAULTS.retention.inboundMessages),
      eventsMs: ms(retention.events, CONFIG_DEFAULTS.retention.events),
      deliveriesMs: ms(retention.deliveries, CONFIG_DEFAULTS.retention.deliveries),
      unreadEventsMs: ms(retention.unreadEvents, CONFIG_DEFAULTS.retention.unreadEvents),
    },
    logging: {
      level: (str(logging.level) ?? CONFIG_DEFAULTS.logging.level) as ResolvedConfig['logging']['level'],
    },
    workers: {
      normalizeLeaseMs: ms(workers.normalizeLease, CONFIG_DEFAULTS.workers.normalizeLease),
      deliveryLeaseMarginMs: ms(workers.deliveryLeaseMargin, CONFIG_DEFAULTS.workers.deliveryLeaseMargin),
      pollBackstopMs: ms(workers.pollBackstop, CONFIG_DEFAULTS.workers.pollBackstop),
      ingestFirst:
        typeof workers.ingestFirst === 'boolean' ? workers.ingestFirst : CONFIG_DEFAULTS.workers.ingestFirst,
      deliveryConcurrency: num(workers.deliveryConcurrency, CONFIG_DEFAULTS.workers.deliveryConcurrency),
      pullSpoolDir: resolve(ctx.baseDir, str(workers.pullSpoolDir) ?? CONFIG_DEFAULTS.workers.pullSpoolDir),
    },
    commands: {
      retryScheduleMs: (commandRetries.length > 0
        ? commandRetries
        : CONFIG_DEFAULTS.commands.retrySchedule
      ).map((d) => configDurationMs(d)!),
      maxRetryAfterMs: ms(commands.maxRetryAfter, CONFIG_DEFAULTS.commands.maxRetryAfter),
      leaseMs: ms(commands.lease, CONFIG_DEFAULTS.commands.lease),
      sweepIntervalMs: ms(commands.sweepInterval, CONFIG_DEFAULTS.commands.sweepInterval),
      concurrency: num(commands.concurrency, CONFIG_DEFAULTS.commands.concurrency),
      ...(commands.instanceConcurrency === undefined
        ? {}
        : { instanceConcurrency: num(commands.instanceConcurrency, 1) }),
      echoWindowMs: ms(commands.echoWindow, CONFIG_DEFAULTS.commands.echoWindow),
      retentionMs: ms(commands.retention, CONFIG_DEFAULTS.commands.retention),
    },
    // Only what the file says: the OTEL_* environment variables fill in the rest, then
    // tracingDefaults() (telemetry/settings.ts has the rule).
    telemetry: { traces: {} },
  };
  if (typeof traces.queueSize === 'number') config.telemetry.traces.queueSize = traces.queueSize;
  if (typeof traces.endpoint === 'string') config.telemetry.traces.endpoint = traces.endpoint;
  if (isJsonObject(traces.headers))
    config.telemetry.traces.headers = Object.fromEntries(
      Object.entries(traces.headers).map(([name, value]) => [name, String(value)]),
    );
  if (typeof traces.sampleRatio === 'number') config.telemetry.traces.sampleRatio = traces.sampleRatio;
  // The exporter reads these variables itself, and sends an endpoint's user:password as Basic auth:
  // secrets the file never marks, which a collector's refusal quotes into the log line of a failed export.
  ctx.secrets.push(...otlpSecrets(config.telemetry.traces.endpoint, ctx.env));
  if (typeof server.publicUrl === 'string') config.server.publicUrl = server.publicUrl;
  if (typeof server.adminToken === 'string') config.server.adminToken = server.adminToken;
  if (typeof data.secretKey === 'string') config.secretKey = data.secretKey;
  if (typeof logging.pretty === 'boolean') config.logging.pretty = logging.pretty;
  return config;
}
