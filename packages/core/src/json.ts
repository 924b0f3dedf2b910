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
