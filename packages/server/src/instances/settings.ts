import {
  type Connector,
  createAjv,
  type JsonObject,
  type JsonSchema,
  type JsonValue,
  SwitchyardError,
} from '@switchyard/core';
import { inputErrorMessage } from '../admin/input.ts';
import { markedValues, REDACTED } from '../delivery/redact.ts';
import { refusedWithoutLookup, VENDOR_DESTINATIONS } from '../delivery/ssrf.ts';

type Validator = ReturnType<ReturnType<typeof createAjv>['compile']>;

/** What settings are checked against: a connector's name and config schema. */
export type SettingsOwner = Pick<Connector, 'name' | 'configSchema'>;

const validators = new WeakMap<SettingsOwner, Validator>();

/** JSON Schema formats whose values say where a connector sends its requests. */
export const URL_FORMATS = new Set([
  'uri',
  'iri',
  'uri-reference',
  'iri-reference',
  'url',
  'hostname',
  'idn-hostname',
]);

/**
 * Checks an instance's settings against its connector's config schema and returns a copy with the
 * schema's defaults filled in. The config loader does the same for file-managed instances (with
 * line numbers); this guards instances made through the API, so a bad setting is refused when it is
 * written rather than found when the first notification arrives.
 *
 * @example
 * ```ts
 * const settings = checkedSettings(docplanner, { pushAuth: { apiKey: 'k' } }); // throws SY_PIPELINE_INVALID_INPUT
 * ```
 */
export function checkedSettings(connector: SettingsOwner, settings: JsonObject): JsonObject {
  let validate = validators.get(connector);
  if (!validate) {
    // Connector schemas carry their own annotation keywords (x-duration, …): not strict. Verbose:
    // an error carries its schema, whose `x-message` words it as the config loader does.
    validate = createAjv({ allErrors: true, strict: false, useDefaults: true, verbose: true }).compile(
      connector.configSchema,
    );
    validators.set(connector, validate);
  }
  let copy: JsonObject;
  try {
    copy = structuredClone(settings);
  } catch (error) {
    // Nesting deeper than the copy's stack (`{"x": [[[…]]]}` 50,000 deep, which JSON.parse and the
    // route's schema let through) is the caller's input, not the hub's failure: it answered 500.
    if (!(error instanceof RangeError)) throw error;
    throw new SwitchyardError(
      'SY_PIPELINE_INVALID_INPUT',
      `settings do not match the ${connector.name} connector's schema: /settings is nested too deeply`,
      { details: { errors: [{ path: '/settings', message: 'is nested too deeply' }] } },
    );
  }
  if (validate(copy)) {
    refuseUncallable(connector, copy);
    return copy;
  }
  // Messages name the failing path and rule, never the value (it may be a secret).
  // Worded as the other admin inputs are (the schema's x-message, an unknown field by name). An
  // `if` names no rule of its own: its `then` reports the field that broke it (as the file's check).
  const errors = (validate.errors ?? [])
    .filter((e) => e.keyword !== 'if')
    .map((e) => ({
      path: `/settings${e.instancePath}`,
      message: inputErrorMessage(e),
    }));
  throw new SwitchyardError(
    'SY_PIPELINE_INVALID_INPUT',
    `settings do not match the ${connector.name} connector's schema: ${errors
      .map((e) => `${e.path || '/settings'} ${e.message}`)
      .join('; ')}`,
    { details: { errors } },
  );
}

/**
 * The URL-valued settings ({@link URL_FORMATS}) the vendor calls' guard would refuse whatever DNS
 * answers (delivery/ssrf.ts, {@link VENDOR_DESTINATIONS}): an `apiBaseUrl` of
 * `http://169.254.169.254/…` was saved and the instance only failed at its first call (a secrets
 * audit). Private and loopback addresses stay allowed (on-premises vendors); a name is resolved
 * only at the call. Each problem's `path` is the setting's JSON pointer inside the settings; the
 * message names the address, not the whole URL. The API ({@link checkedSettings}) and the config
 * loader (config/load.ts) both refuse with these.
 *
 * @example
 * ```ts
 * uncallableSettings(acuity, { apiBaseUrl: 'http://169.254.169.254/' });
 * // [{ path: '/apiBaseUrl', message: 'is never called: metadata address 169.254.169.254 is not allowed' }]
 * ```
 */
export function uncallableSettings(
  connector: SettingsOwner,
  settings: JsonObject,
): { path: string; message: string }[] {
  const isUrl = (schema: JsonSchema) => typeof schema.format === 'string' && URL_FORMATS.has(schema.format);
  const errors: { path: string; message: string }[] = [];
  for (const [pointer, value] of markedValues(settings, connector.configSchema, isUrl)) {
    if (typeof value !== 'string') continue;
    // A `hostname` format's value is the host alone.
    const url = value.includes('://') ? value : `http://${value}/`;
    const reason = refusedWithoutLookup(url, VENDOR_DESTINATIONS);
    if (reason !== undefined) errors.push({ path: pointer, message: `is never called: ${reason}` });
  }
  return errors;
}

/**
 * Why pushes to an instance would all be refused: its connector's vendor signs the hook URL it was
 * told (`push.signsHookUrl`, Square), which the hub rebuilds from `server.publicUrl`, and the hub
 * has none, so every push is refused 401 at run time. Undefined when pushes can be verified. The
 * config loader (config/load.ts) and the admin API (instances/api.ts) refuse with these words.
 *
 * @example
 * ```ts
 * unverifiablePushes(square, 'push', 'sq-main', undefined);
 * // 'connector "square" is verified against the hook URL its vendor signs, server.publicUrl + /hooks/sq-main: …'
 * ```
 */
export function unverifiablePushes(
  connector: Pick<Connector, 'name' | 'push'>,
  mode: string,
  instanceId: string,
  publicUrl: string | undefined,
): string | undefined {
  if (mode === 'pull' || !connector.push?.signsHookUrl || publicUrl !== undefined) return undefined;
  return `connector "${connector.name}" is verified against the hook URL its vendor signs, server.publicUrl + /hooks/${instanceId}: set server.publicUrl (the URL the vendor reaches the hub at); without it every push is refused 401`;
}

/** Throws SY_PIPELINE_INVALID_INPUT naming each of {@link uncallableSettings}. */
function refuseUncallable(connector: SettingsOwner, settings: JsonObject): void {
  const errors = uncallableSettings(connector, settings).map((e) => ({ ...e, path: `/settings${e.path}` }));
  if (errors.length === 0) return;
  throw new SwitchyardError(
    'SY_PIPELINE_INVALID_INPUT',
    `settings of the ${connector.name} connector: ${errors.map((e) => `${e.path} ${e.message}`).join('; ')}`,
    { details: { errors } },
  );
}

/**
 * `[redacted]` placeholders in submitted settings keep the stored value, so a client can GET an
 * instance, change one field and PUT it back without knowing (or erasing) its secrets. `kept`, when
 * given, collects the JSON pointer of every value kept that way.
 *
 * @example
 * ```ts
 * const kept: string[] = [];
 * keepRedacted({ apiKey: '[redacted]', region: 'us' }, { apiKey: 'k-123', region: 'eu' }, kept);
 * // { apiKey: 'k-123', region: 'us' }; kept: ['/apiKey']
 * ```
 */
export function keepRedacted(
  input: JsonValue,
  stored: JsonValue | undefined,
  kept?: string[],
  at = '',
): JsonValue {
  if (input === REDACTED && stored !== undefined) {
    kept?.push(at);
    return stored;
  }
  if (isObject(input) && isObject(stored)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(input))
      out[k] = keepRedacted(v, stored[k], kept, `${at}/${pointerToken(k)}`);
    return out;
  }
  return input;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}
