/**
 * Keeping secrets out of logs, errors and API answers: header redaction by name, config redaction
 * driven by the JSON Schema's `"x-secret": true` marks, and the list of secret values for scrubbing
 * free text (log lines, vendor error bodies) that might echo one.
 */
import type { Connector, JsonSchema } from '@switchyard/core';

/** What every redacted value is replaced with. */
export const REDACTED = '[redacted]';

const SECRET_HEADER_NAMES = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'authtoken',
]);
const SECRET_HEADER_PARTS = [
  'token',
  'secret',
  'key',
  'signature',
  'password',
  'passwd',
  'session',
  'credential',
  // OAuth2's JWT grants (RFC 7523): `assertion`, `client_assertion` carry a signed credential.
  'assertion',
];

/**
 * True when a header with this name may carry a secret (see {@link redactHeaders}).
 *
 * @example
 * ```ts
 * isSecretHeaderName('X-Clockwise-Token'); // true
 * isSecretHeaderName('content-type');      // false
 * ```
 */
export function isSecretHeaderName(name: string, extraSecretHeaderNames: readonly string[] = []): boolean {
  const lower = name.toLowerCase();
  if (SECRET_HEADER_NAMES.has(lower)) return true;
  if (extraSecretHeaderNames.some((extra) => extra.toLowerCase() === lower)) return true;
  return SECRET_HEADER_PARTS.some((part) => lower.includes(part));
}

/**
 * A copy of `headers` safe to log: values of `authorization`, `proxy-authorization`, `cookie`,
 * `set-cookie`, `x-api-key`, `authtoken`, of any header whose name contains `token`, `secret`, `key`,
 * `signature`, `password`, `passwd`, `session`, `credential` or `assertion` (case-insensitive), and of the
 * `extraSecretHeaderNames` become `"[redacted]"`. Names keep their case; undefined values stay
 * undefined (absent stays visibly absent).
 *
 * @example
 * ```ts
 * redactHeaders({ Authorization: 'Bearer abc', 'content-type': 'application/json' });
 * // { Authorization: '[redacted]', 'content-type': 'application/json' }
 * redactHeaders(req.headers, { extraSecretHeaderNames: ['x-docplanner-auth'] });
 * ```
 */
export function redactHeaders<T extends string | readonly string[] | number | undefined>(
  headers: Readonly<Record<string, T>>,
  options: { extraSecretHeaderNames?: readonly string[] } = {},
): Record<string, T | typeof REDACTED> {
  const result: Record<string, T | typeof REDACTED> = {};
  for (const [name, value] of Object.entries(headers)) {
    result[name] =
      value !== undefined && isSecretHeaderName(name, options.extraSecretHeaderNames) ? REDACTED : value;
  }
  return result;
}

/**
 * A copy of a parsed JSON body safe to keep: the value of every object member whose name
 * {@link isSecretHeaderName} flags (`auth_token`, `access_token`, `client_secret`, `password`, …),
 * at any depth, becomes `"[redacted]"`. Used on vendor answers kept as snippets (a login's token).
 * A body kept as text (its content type was not JSON's) is read as the JSON or the form it may
 * still be ({@link redactSecretText}).
 *
 * @example
 * ```ts
 * redactSecretFields({ auth_token: 'abc', company_id: 37000 }); // { auth_token: '[redacted]', company_id: 37000 }
 * ```
 */
export function redactSecretFields<T>(value: T, depth = 0): T {
  if (depth > MAX_DEPTH) return value;
  if (typeof value === 'string' && depth === 0) return redactSecretText(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactSecretFields(v, depth + 1)) as T;
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(value)) {
    out[name] =
      v !== null && v !== undefined && isSecretField(name) ? REDACTED : redactSecretFields(v, depth + 1);
  }
  return out as T;
}

/**
 * A vendor answer's text with its secret fields redacted as {@link redactSecretFields} redacts a
 * parsed body's: a JSON object or array (written again, compact) or a form
 * (`access_token=…&token_type=bearer`, OAuth2's other token answer), else the text as it is. A
 * vendor's body is parsed only under a JSON content type, so a token endpoint or a login answering
 * its JSON as `text/plain` or `text/html` (or with none) had the token kept whole in the call's
 * snippet, shown by `GET /v1/commands/{id}` to the command's sender: an instance's live credential
 * (a commands audit).
 *
 * @example
 * ```ts
 * redactSecretText('{"access_token":"abc","expires_in":3600}'); // '{"access_token":"[redacted]","expires_in":3600}'
 * redactSecretText('access_token=abc&token_type=bearer');      // 'access_token=%5Bredacted%5D&token_type=bearer'
 * redactSecretText('<html>Bad gateway</html>');                // unchanged
 * ```
 */
export function redactSecretText(text: string): string {
  const read = readText(text);
  if (read === undefined) return text;
  if (!(read instanceof URLSearchParams)) return JSON.stringify(redactSecretFields(read));
  let secret = false;
  for (const name of new Set(read.keys())) {
    if (isSecretField(name)) {
      read.set(name, REDACTED);
      secret = true;
    }
  }
  return secret ? read.toString() : text;
}

/** A body kept as text, read as JSON (an object or an array) or as a form; undefined when neither. */
function readText(text: string): unknown | URLSearchParams | undefined {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(trimmed) as unknown;
    } catch {
      return undefined; // not JSON after all
    }
  }
  return /^[\w.%\-[\]]+=[^\s&]*(?:&[\w.%\-[\]]+=[^\s&]*)*$/.test(trimmed)
    ? new URLSearchParams(trimmed)
    : undefined;
}

const isSecretField = (name: string) => isSecretHeaderName(name) && !PLAIN_FIELDS.has(name.toLowerCase());

/**
 * The values {@link redactSecretFields} would redact in a vendor's answer (parsed, or text read as
 * JSON or a form): what a message quoting that answer must not show either. A connector's failure
 * message ends with the vendor's words, and with the whole text of an answer it could not parse
 * (Clockwise.MD's, Cliniko's, BookingBug's): a token field in it was kept there, redacted only in
 * the body beside it.
 *
 * @example
 * ```ts
 * secretFieldValues('{"error":"expired","session_token":"s-0123"}'); // ['s-0123']
 * secretFieldValues({ auth_token: 'abc', company_id: 37000 });        // ['abc']
 * ```
 */
export function secretFieldValues(value: unknown, depth = 0): string[] {
  if (depth > MAX_DEPTH) return [];
  if (typeof value === 'string') {
    if (depth > 0) return [];
    const read = readText(value);
    if (read instanceof URLSearchParams) {
      return [...read].filter(([name, v]) => isSecretField(name) && v !== '').map(([, v]) => v);
    }
    return read === undefined ? [] : secretFieldValues(read, depth + 1);
  }
  if (Array.isArray(value)) return value.flatMap((v) => secretFieldValues(v, depth + 1));
  if (!isObject(value)) return [];
  return Object.entries(value).flatMap(([name, v]) =>
    isSecretField(name) ? (typeof v === 'string' && v !== '' ? [v] : []) : secretFieldValues(v, depth + 1),
  );
}

/**
 * Members the name-based guess would flag that hold no secret: an OAuth2 token answer's
 * `token_type` (`"bearer"`), shown as it is (a commands audit read
 * `"token_type":"[redacted]"` in a call's snippet).
 */
const PLAIN_FIELDS = new Set(['token_type']);

/**
 * The header names (lowercase) that carry an instance's push credentials, as its connector declares
 * them for this config (`push.credentials`, e.g. a custom API-key header name). Feed them to
 * {@link redactHeaders} as `extraSecretHeaderNames`: the declaration decides, the name-based guess
 * stays as a safety net. A connector whose declaration throws on a broken config gets `[]` (the
 * guess still applies).
 *
 * @example
 * ```ts
 * credentialHeaderNames(docplanner, { pushAuth: { headerName: 'X-Docplanner-Auth', apiKey } }); // ['x-docplanner-auth']
 * ```
 */
export function credentialHeaderNames(connector: Connector<never>, config: unknown): string[] {
  const declare = connector.push?.credentials as
    | ((config: unknown) => { headers?: readonly string[] })
    | undefined;
  if (!declare) return [];
  try {
    return (declare(config).headers ?? []).map((name) => name.toLowerCase());
  } catch {
    return [];
  }
}

type Schema = JsonSchema | boolean;
type Visit = (value: unknown, pointer: string) => unknown;
/** Which schema nodes a walk stops at and hands to its visit: `x-secret` ones, URL formats, … */
type Marked = (schema: JsonSchema) => boolean;

const MAX_DEPTH = 64;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function resolveRef(ref: string, root: Schema): Schema | undefined {
  if (!ref.startsWith('#')) return undefined; // remote refs are not followed
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const segment = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    if (!isObject(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return typeof node === 'boolean' || isObject(node) ? (node as Schema) : undefined;
}

/**
 * Walks `value` along `schema`, replacing every value under a schema `marked` accepts (an
 * `"x-secret": true` one, say) by what `visit` returns for it and its JSON pointer. Follows properties, patternProperties, additionalProperties, items and
 * prefixItems (and the draft-7 array form of items), allOf/anyOf/oneOf, if/then/else and local
 * `$ref`s (`#/$defs/...`). Combinator branches are all applied, so a field secret in any branch is
 * treated as secret. Never mutates `value`.
 */
function walk(
  value: unknown,
  schema: Schema | undefined,
  root: Schema,
  marked: Marked,
  visit: Visit,
  depth: number,
  at: string,
): unknown {
  if (value === undefined || schema === undefined || typeof schema === 'boolean' || depth > MAX_DEPTH)
    return value;
  if (typeof schema.$ref === 'string') {
    value = walk(value, resolveRef(schema.$ref, root), root, marked, visit, depth + 1, at);
  }
  if (marked(schema)) return value === null ? value : visit(value, at);

  const next = depth + 1;
  for (const keyword of ['allOf', 'anyOf', 'oneOf'] as const) {
    const branches = schema[keyword];
    if (Array.isArray(branches)) {
      for (const branch of branches) value = walk(value, branch as Schema, root, marked, visit, next, at);
    }
  }
  for (const keyword of ['if', 'then', 'else'] as const) {
    const branch = schema[keyword];
    if (branch !== undefined) value = walk(value, branch as Schema, root, marked, visit, next, at);
  }

  if (isObject(value)) {
    const properties = isObject(schema.properties) ? (schema.properties as Record<string, Schema>) : {};
    const patterns = isObject(schema.patternProperties)
      ? Object.entries(schema.patternProperties as Record<string, Schema>).map(
          ([pattern, sub]) => [safeRegExp(pattern), sub] as const,
        )
      : [];
    const additional = schema.additionalProperties as Schema | undefined;
    const result: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      const path = `${at}/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      let out = child;
      let matched = false;
      if (Object.hasOwn(properties, key)) {
        out = walk(out, properties[key], root, marked, visit, next, path);
        matched = true;
      }
      for (const [regexp, sub] of patterns) {
        if (regexp?.test(key)) {
          out = walk(out, sub, root, marked, visit, next, path);
          matched = true;
        }
      }
      if (!matched) out = walk(out, additional, root, marked, visit, next, path);
      result[key] = out;
    }
    return result;
  }

  if (Array.isArray(value)) {
    const prefix = Array.isArray(schema.prefixItems)
      ? (schema.prefixItems as Schema[])
      : Array.isArray(schema.items)
        ? (schema.items as Schema[])
        : [];
    const rest = Array.isArray(schema.items)
      ? (schema.additionalItems as Schema | undefined)
      : (schema.items as Schema | undefined);
    return value.map((item, index) =>
      walk(item, index < prefix.length ? prefix[index] : rest, root, marked, visit, next, `${at}/${index}`),
    );
  }
  return value;
}

function safeRegExp(pattern: string): RegExp | undefined {
  try {
    return new RegExp(pattern, 'u');
  } catch {
    return undefined;
  }
}

/**
 * A copy of `value` with every field the schema marks `"x-secret": true` replaced by
 * `"[redacted]"` (a secret object or array is replaced whole; null stays null so "not set" remains
 * visible). Use before logging a config or returning it from the admin API.
 *
 * @example
 * ```ts
 * const schema = { type: 'object', properties: { apiKey: { type: 'string', 'x-secret': true }, region: { type: 'string' } } };
 * redactConfig({ apiKey: 'k-123', region: 'eu' }, schema); // { apiKey: '[redacted]', region: 'eu' }
 * ```
 */
export function redactConfig<T>(value: T, schema: JsonSchema | boolean): T {
  return walk(value, schema, schema, isSecret, () => REDACTED, 0, '') as T;
}

const isSecret: Marked = (schema) => schema['x-secret'] === true;

/**
 * Every value of `value` under a schema node that `marked` accepts, by JSON pointer (null and
 * absent values left out), following the schema as {@link redactConfig} does: the admin API finds a
 * connector's URL-valued settings this way (instances/routes.ts).
 *
 * @example
 * ```ts
 * markedValues({ apiBaseUrl: 'https://api.example' }, schema, (s) => s.format === 'uri'); // Map { '/apiBaseUrl' => 'https://api.example' }
 * ```
 */
export function markedValues(
  value: unknown,
  schema: JsonSchema | boolean,
  marked: (schema: JsonSchema) => boolean,
): Map<string, unknown> {
  const found = new Map<string, unknown>();
  walk(
    value,
    schema,
    schema,
    marked,
    (v, pointer) => {
      found.set(pointer, v);
      return v;
    },
    0,
    '',
  );
  return found;
}

/**
 * Every string found under an `"x-secret": true` field (nested strings of secret objects and arrays
 * too, numbers as their text), deduplicated, empty strings left out, longest first so a scrubber
 * replaces `abc123` before its part `abc`. Feed it to the logger's `secretScrubber` or `addLogSecrets` (logging/logger.ts).
 *
 * @example
 * ```ts
 * collectSecretValues({ apiKey: 'k-123', oauth: { clientSecret: 'cs-9' } }, connector.configSchema);
 * // ['k-123', 'cs-9'] (whichever are marked x-secret)
 * ```
 */
export function collectSecretValues(value: unknown, schema: JsonSchema | boolean): string[] {
  const found = new Set<string>();
  const collect = (secret: unknown): void => {
    if (typeof secret === 'string') {
      if (secret !== '') found.add(secret);
    } else if (typeof secret === 'number' || typeof secret === 'bigint') {
      found.add(String(secret));
    } else if (Array.isArray(secret)) {
      secret.forEach(collect);
    } else if (isObject(secret)) {
      Object.values(secret).forEach(collect);
    }
  };
  walk(
    value,
    schema,
    schema,
    isSecret,
    (secret) => {
      collect(secret);
      return secret;
    },
    0,
    '',
  );
  return [...found].sort((a, b) => b.length - a.length);
}
