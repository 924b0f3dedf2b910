/**
 * From a JSON path (ajv's instancePath, or our own segments) to a line and column in the YAML
 * source, and to the dotted path operators read (`instances[2].connector`).
 */
import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from 'yaml';

export type PathSegment = string | number;

/** Where a path points in the file (1-based). */
export interface SourcePosition {
  line: number;
  column: number;
}

/** `/instances/2/connector` → `['instances', 2, 'connector']`. */
export function pointerToSegments(pointer: string): PathSegment[] {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((part) => (/^(0|[1-9][0-9]*)$/.test(part) ? Number(part) : part));
}

/**
 * The path as operators write it.
 *
 * @example
 * ```ts
 * displayPath(['instances', 2, 'settings', 'x-key']); // 'instances[2].settings["x-key"]'
 * ```
 */
export function displayPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null)?.range;
  return range ? range[0] : undefined;
}

/**
 * The position of the value at `segments`, or of the closest ancestor that exists. With
 * `preferKey`, the position of the key naming the last segment (for "unknown field" problems).
 */
export function positionOf(
  doc: Document,
  lineCounter: LineCounter,
  segments: readonly PathSegment[],
  options: { preferKey?: boolean } = {},
): SourcePosition {
  let node: unknown = doc.contents;
  let best = rangeStart(node) ?? 0;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (isAlias(node)) node = node.resolve(doc);
    let next: unknown;
    let keyStart: number | undefined;
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isPair(item) && String(isScalar(item.key) ? item.key.value : item.key) === String(segment),
      );
      if (pair) {
        keyStart = rangeStart(pair.key);
        next = pair.value;
      }
    } else if (isSeq(node) && typeof segment === 'number') {
      next = node.items[segment];
    }
    if (next === undefined && keyStart === undefined) break;
    const last = i === segments.length - 1;
    const valueStart = rangeStart(next);
    // An empty value (`server:`) has no useful range: point at its key.
    const useKey = (last && options.preferKey) || valueStart === undefined || isNullScalar(next);
    best = (useKey ? (keyStart ?? valueStart) : (valueStart ?? keyStart)) ?? best;
    node = next;
  }
  const pos = lineCounter.linePos(best);
  return { line: pos.line, column: pos.col };
}

function isNullScalar(node: unknown): boolean {
  return isScalar(node) && (node as Node & { value: unknown }).value === null;
}

/**
 * How a concept's input (the hub's units and names) maps back onto the file that wrote it: fields
 * the file names otherwise (`timeoutMs` is written `timeout`), and the input pointers the file
 * writes as durations (so a refused limit reads `must be at least 100ms`).
 */
export interface FilePaths {
  /** By the input's JSON pointer (`/timeoutMs`, `/pull/intervalMs`): where the file has it. */
  renamed: Record<string, readonly PathSegment[]>;
  durations: readonly RegExp[];
}

/**
 * Where in the file a field of a converted input (the JSON pointer of an input error) was written.
 *
 * @example
 * ```ts
 * fileSegments(['subscriptions', 2], '/retryScheduleMs/1', SUBSCRIPTION_FILE_PATHS); // ['subscriptions', 2, 'retry', 'schedule', 1]
 * ```
 */
export function fileSegments(
  entry: readonly PathSegment[],
  pointer: string,
  paths: FilePaths,
): PathSegment[] {
  const prefix = Object.keys(paths.renamed)
    .filter((p) => pointer === p || pointer.startsWith(`${p}/`))
    .sort((a, b) => b.length - a.length)[0];
  const rest = (prefix === undefined ? pointer : pointer.slice(prefix.length)).split('/').slice(1);
  return [
    ...entry,
    ...(prefix === undefined ? [] : (paths.renamed[prefix] ?? [])),
    ...rest.map((p) => (/^[0-9]+$/.test(p) ? Number(p) : p)),
  ];
}
