/** Any JSON value. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** True for a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * What Postgres refuses in text: NUL anywhere (text and jsonb alike), and a UTF-16 surrogate without
 * its pair (jsonb refuses the `\ud800` escape; the driver would silently turn one in a text column
 * into U+FFFD). Without the `u` flag the pattern sees code units, which is what a lone surrogate is.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what must be found.
const REFUSED_CHARACTERS = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** What replaces a refused character: Unicode's own mark for "a character was lost here". */
export const REPLACEMENT_CHARACTER = '\uFFFD';

/**
 * `text` with what Postgres refuses in text and jsonb (NUL, a lone surrogate) replaced by U+FFFD;
 * the same string when there is nothing to replace. For text that came from outside (a vendor's
 * payload, a subscriber's or an approver's answer) on its way into a column: one such character
 * made the whole statement fail.
 *
 * @example
 * ```ts
 * storableText('ok\u0000!'); // 'ok\uFFFD!'
 * ```
 */
export function storableText(text: string): string {
  // `search` ignores the global flag's lastIndex; most strings have nothing to replace.
  return text.search(REFUSED_CHARACTERS) === -1
    ? text
    : text.replace(REFUSED_CHARACTERS, REPLACEMENT_CHARACTER);
}

/**
 * `value` with `map` applied to every string in it, object keys too; the same object where nothing
 * changed. Throws RangeError when it is nested too deeply to walk.
 *
 * @example
 * ```ts
 * mapJsonStrings({ error: 'bad key k-123' }, (s) => s.replaceAll('k-123', '[redacted]'));
 * // { error: 'bad key [redacted]' }
 * ```
 */
export function mapJsonStrings(value: JsonValue, map: (text: string) => string): JsonValue {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) {
    let out: JsonValue[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const v = mapJsonStrings(value[i]!, map);
      if (v !== value[i]) {
        out ??= value.slice();
        out[i] = v;
      }
    }
    return out ?? value;
  }
  if (value !== null && typeof value === 'object') {
    let changed = false;
    const entries = Object.entries(value).map(([k, v]) => {
      const key = map(k);
      const inner = mapJsonStrings(v, map);
      if (key !== k || inner !== v) changed = true;
      return [key, inner] as const;
    });
    return changed ? Object.fromEntries(entries) : value;
  }
  return value;
}
