/** A one-line progress bar for terminals; silent elsewhere (logs and pipes get a final summary only). */

/** A stream the bar can draw on: a TTY has `isTTY` and usually `columns`. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Progress {
  /** Redraws with `done` of the total finished (`detail` is shown after the counts). */
  update(done: number, detail?: string): void;
  /** Ends the line (a TTY keeps the last drawing). */
  finish(): void;
}

/**
 * Renders `[#########.........]  45%  450/1000 detail` on one line, rewritten in place. Draws only on
 * a TTY and at most every `intervalMs` (the final `update` before `finish` always draws).
 *
 * @example
 * ```ts
 * const bar = progressBar(process.stderr, 1000, 'replay');
 * bar.update(450, '3 dead');
 * bar.finish();
 * ```
 */
export function progressBar(
  stream: ProgressStream,
  total: number,
  label: string,
  intervalMs = 100,
): Progress {
  const tty = stream.isTTY === true;
  let last = 0;
  let drawn = false;
  let pending: { done: number; detail?: string | undefined } | undefined;
  const draw = (done: number, detail?: string) => {
    const ratio = total > 0 ? Math.min(1, done / total) : 1;
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 40 - label.length));
    const filled = Math.round(ratio * width);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
    const percent = `${Math.floor(ratio * 100)}%`.padStart(4);
    stream.write(`\r\x1b[2K${label} [${bar}] ${percent} ${done}/${total}${detail ? ` ${detail}` : ''}`);
    drawn = true;
    pending = undefined;
    last = Date.now();
  };
  return {
    update(done, detail) {
      if (!tty) return;
      pending = { done, detail };
      if (Date.now() - last >= intervalMs || done >= total) draw(done, detail);
    },
    finish() {
      if (!tty) return;
      if (pending) draw(pending.done, pending.detail);
      if (drawn) stream.write('\n');
    },
  };
}
