// biome-ignore-all lint/suspicious/noTemplateCurlyInString: secret references are written ${env:...} on purpose.
/**
 * Secret references in the config file: `${env:NAME}`, `${env:NAME:-default}` and `${file:PATH}`.
 * A value may embed references (`postgres://hub:${env:PGPASSWORD}@db/hub`); `$${` writes a literal
 * `${`. Errors name the reference, never a resolved value.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

/** One `${...}` found in a string. */
export interface SecretReference {
  kind: 'env' | 'file';
  /** The variable name or the file path as written. */
  target: string;
  /** The `:-default` of an env reference, when given. */
  fallback?: string;
  /** The reference as written, e.g. `${env:API_KEY}`: safe to print. */
  raw: string;
}

/** How references are resolved. */
export interface ResolveOptions {
  env: Readonly<Record<string, string | undefined>>;
  /** The directory `${file:...}` paths are relative to (the config file's). */
  baseDir: string;
}

/** A resolved string: the value and the secret values that went into it. */
export type ResolveResult =
  | { ok: true; value: string; secrets: string[]; references: SecretReference[] }
  | { ok: false; errors: string[]; references: SecretReference[] };

// A `${` with no `}` after it matches too (its closing group empty): taken as written, a secret field
// would hold the reference's own text, e.g. an admin token anyone reading the file knows.
const TOKEN = /\$\$\{|\$\{([^}]*)(\}|$)/g;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function parseBody(body: string, raw: string): SecretReference | string {
  const colon = body.indexOf(':');
  const kind = colon < 0 ? body : body.slice(0, colon);
  const rest = colon < 0 ? '' : body.slice(colon + 1);
  if (kind === 'env') {
    const dash = rest.indexOf(':-');
    const name = dash < 0 ? rest : rest.slice(0, dash);
    if (!ENV_NAME.test(name)) return `malformed secret reference ${raw}: expected \${env:NAME}`;
    return dash < 0
      ? { kind, target: name, raw }
      : { kind, target: name, fallback: rest.slice(dash + 2), raw };
  }
  if (kind === 'file') {
    if (rest.trim() === '') return `malformed secret reference ${raw}: expected \${file:PATH}`;
    return { kind, target: rest, raw };
  }
  return `malformed secret reference ${raw}: use \${env:NAME} or \${file:PATH}`;
}

/**
 * True when a string contains a secret reference (or something that tries to be one).
 *
 * @example
 * ```ts
 * hasReference('${env:TOKEN}'); // true
 * hasReference('$${not a reference}'); // false
 * ```
 */
export function hasReference(text: string): boolean {
  for (const match of text.matchAll(TOKEN)) if (match[0] !== '$${') return true;
  return false;
}

/**
 * What a config value resolves to when that value is written in the file itself: the default of a
 * `${env:NAME:-default}` whose variable is unset or empty. Anyone reading the file knows it (the
 * example's demo values), so it may be printed, e.g. in a sample command that must work as shown.
 * Undefined for anything else: a variable's or a file's content is a secret and is never printed.
 *
 * @example
 * ```ts
 * fileDefault('${env:PUSH_KEY:-demo-key}', {}); // 'demo-key'
 * fileDefault('${env:PUSH_KEY:-demo-key}', { PUSH_KEY: 'real' }); // undefined
 * fileDefault('${env:PUSH_KEY}', {}); // undefined
 * ```
 */
export function fileDefault(text: string, env: ResolveOptions['env']): string | undefined {
  const whole = /^\$\{([^}]*)\}$/.exec(text);
  if (!whole) return undefined;
  const ref = parseBody(whole[1]!, text);
  if (typeof ref === 'string' || ref.kind !== 'env' || !ref.fallback) return undefined;
  const value = env[ref.target];
  return value === undefined || value === '' ? ref.fallback : undefined;
}

/**
 * Replaces every reference in `text` with its value. A file's content loses its trailing newline.
 *
 * @example
 * ```ts
 * resolveReferences('${env:TOKEN}', { env: { TOKEN: 's3cret' }, baseDir: '/etc/switchyard' });
 * // { ok: true, value: 's3cret', secrets: ['s3cret'], references: [...] }
 * ```
 */
export function resolveReferences(text: string, options: ResolveOptions): ResolveResult {
  const errors: string[] = [];
  const secrets: string[] = [];
  const references: SecretReference[] = [];
  const value = text.replace(TOKEN, (whole: string, body: string | undefined, close: string | undefined) => {
    if (whole === '$${') return '${';
    if (close === '') {
      // Not `whole`: running to the end of the value, it may be a literal secret's tail.
      errors.push('malformed secret reference: a ${ with no closing } (write $${ for a literal ${)');
      return whole;
    }
    const parsed = parseBody(body ?? '', whole);
    if (typeof parsed === 'string') {
      errors.push(parsed);
      return whole;
    }
    references.push(parsed);
    const resolved = resolveOne(parsed, options);
    if (typeof resolved !== 'string') {
      errors.push(resolved.error);
      return whole;
    }
    secrets.push(resolved);
    return resolved;
  });
  if (errors.length > 0) return { ok: false, errors, references };
  return { ok: true, value, secrets, references };
}

function resolveOne(ref: SecretReference, options: ResolveOptions): string | { error: string } {
  if (ref.kind === 'env') {
    const value = options.env[ref.target];
    if (value !== undefined && value !== '') return value;
    if (ref.fallback !== undefined && ref.fallback !== '') return ref.fallback;
    return {
      error:
        value === undefined
          ? `secret reference ${ref.raw}: environment variable ${ref.target} is not set`
          : `secret reference ${ref.raw}: environment variable ${ref.target} is empty`,
    };
  }
  const path = isAbsolute(ref.target) ? ref.target : resolve(options.baseDir, ref.target);
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable');
    return { error: `secret reference ${ref.raw}: cannot read ${path} (${why})` };
  }
  // Editors and `echo` add a final newline that is never part of the secret.
  const trimmed = content.replace(/(\r?\n)+$/, '');
  if (trimmed === '') return { error: `secret reference ${ref.raw}: ${path} is empty` };
  return trimmed;
}
