/**
 * An in-memory answer to "may this credential be right?" for requests from an address over the
 * failed-authentication limit (http/security/auth-rate-limit.ts): those still get the hub's own
 * credentials checked (a `sycmd_` command credential, a pull feed's secret), so that one client
 * with a wrong credential behind a shared address does not lock the others out — but a wrong
 * credential must not cost them a database read each, or an attacker drives database load at the
 * request rate (a security audit: 500 wrong `sycmd_` guesses cost ~270 transactions).
 */
import { createHash } from 'node:crypto';

/** Options of {@link CredentialSnapshot}. */
export interface CredentialSnapshotOptions {
  /**
   * Reads the digests of every credential in force, in one statement: {@link credentialDigest}, or
   * the hash the store already keeps (a `sycmd_` credential's `token_hash`).
   */
  load: () => Promise<Iterable<string>>;
  /**
   * A miss reloads the snapshot when it is older than this, ms; at most one load in flight. It
   * bounds both what misses cost (one load per `refreshMs`, whatever the request rate) and how
   * long a credential created or rotated in another process is refused to limited addresses.
   * Default 5 000.
   */
  refreshMs?: number;
  /** Clock, ms (tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * A digest a {@link CredentialSnapshot} may hold for a credential: SHA-256 of its scope (a feed's
 * subscription id) and the credential. Only digests stay in
 * memory, never a credential.
 *
 * @example
 * ```ts
 * credentialDigest('crm', secret); // 'a3f1…' (64 hex characters)
 * ```
 */
export function credentialDigest(scope: string, credential: string): string {
  return createHash('sha256').update(scope).update('\u0000').update(credential).digest('hex');
}

/**
 * The digests of the credentials in force, read in one statement and kept in memory: a digest not
 * held is a wrong credential (or one created since the last load), answered without a database
 * read. A hit is not a verdict: the caller goes on to its real check (a revoked credential, a
 * disabled subscription are refused there). A miss reloads at most once per `refreshMs`, so
 * wrong guesses cost at most one load per `refreshMs` per process; {@link invalidate} (a
 * credential created or rotated here) makes the next miss reload at once. Memory: one digest
 * per credential in force.
 *
 * @example
 * ```ts
 * const snapshot = new CredentialSnapshot({ load: () => listCredentialHashes(db) });
 * if (!(await snapshot.mayHold(sha256(token)))) throw unauthorized(); // no database read
 * ```
 */
export class CredentialSnapshot {
  readonly refreshMs: number;
  readonly #load: () => Promise<Iterable<string>>;
  readonly #now: () => number;
  #digests = new Set<string>();
  /** When the snapshot was read; -Infinity: never, or invalidated. */
  #loadedAt = Number.NEGATIVE_INFINITY;
  #loading: Promise<void> | undefined;
  /** Bumped by {@link invalidate}: a load that started before it does not count as fresh. */
  #generation = 0;

  constructor(options: CredentialSnapshotOptions) {
    this.#load = options.load;
    this.refreshMs = options.refreshMs ?? 5_000;
    this.#now = options.now ?? Date.now;
    if (!(this.refreshMs >= 0)) throw new RangeError('refreshMs must be ≥ 0');
  }

  /** Whether `digest` may be a credential in force (false: certainly not, as of the last load). */
  async mayHold(digest: string): Promise<boolean> {
    if (this.#digests.has(digest)) return true;
    if (this.#now() - this.#loadedAt < this.refreshMs) return false;
    await this.#reload();
    return this.#digests.has(digest);
  }

  /** Credentials were created or rotated in this process: the next miss reads them again. */
  invalidate(): void {
    this.#generation++;
    this.#loadedAt = Number.NEGATIVE_INFINITY;
  }

  #reload(): Promise<void> {
    this.#loading ??= (async () => {
      try {
        const started = this.#now();
        const generation = this.#generation;
        this.#digests = new Set(await this.#load());
        if (generation === this.#generation) this.#loadedAt = started;
      } finally {
        this.#loading = undefined;
      }
    })();
    return this.#loading;
  }
}
