import type { Bindings, ChildLoggerOptions, Logger } from 'pino';

type Level = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/**
 * A child logger that makes its pino child only when a line is written at an enabled level. pino
 * serializes a child's bindings through the redaction paths when the child is made, so a child per
 * request or per message that usually writes nothing (the default `info` level) was a measurable
 * share of a push's CPU for a logger nobody used. Lines that are written are the child's, exactly
 * as with `parent.child(bindings)`.
 */
class LazyChildLogger {
  readonly #parent: Logger;
  readonly #bindings: Bindings;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: Bindings) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  #real(): Logger {
    this.#child ??= this.#parent.child(this.#bindings);
    return this.#child;
  }

  #write(level: Level, args: unknown[]): void {
    const logger = this.#child ?? this.#parent;
    if (!logger.isLevelEnabled(level)) return;
    (this.#real()[level] as (...a: unknown[]) => void)(...args);
  }

  get level(): string {
    return (this.#child ?? this.#parent).level;
  }

  set level(level: string) {
    this.#real().level = level;
  }

  isLevelEnabled(level: string): boolean {
    return (this.#child ?? this.#parent).isLevelEnabled(level);
  }

  bindings(): Bindings {
    return this.#real().bindings();
  }

  child(bindings: Bindings, options?: ChildLoggerOptions): Logger {
    return this.#real().child(bindings, options);
  }

  fatal(...args: unknown[]): void {
    this.#write('fatal', args);
  }
  error(...args: unknown[]): void {
    this.#write('error', args);
  }
  warn(...args: unknown[]): void {
    this.#write('warn', args);
  }
  info(...args: unknown[]): void {
    this.#write('info', args);
  }
  debug(...args: unknown[]): void {
    this.#write('debug', args);
  }
  trace(...args: unknown[]): void {
    this.#write('trace', args);
  }
  silent(): void {}
}

/**
 * `parent.child(bindings)`, made only when a line is first written at an enabled level: for the
 * per-request and per-message loggers of the hot paths, which at the default level write nothing.
 * It offers the level methods, `level`, `isLevelEnabled`, `bindings` and `child`.
 *
 * @example
 * ```ts
 * const logger = lazyChild(rt.logger, { inbound: row.id });
 * logger.warn({ reason }, 'normalization failed'); // the child is made here, not before
 * ```
 */
export function lazyChild(parent: Logger, bindings: Bindings): Logger {
  return new LazyChildLogger(parent, bindings) as unknown as Logger;
}
