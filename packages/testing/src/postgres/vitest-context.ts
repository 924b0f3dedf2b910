/** What the global setup hands every test file through vitest's `provide` / `inject`. */
export interface ProvidedTestPostgres {
  /** The admin URL, when a server is available. */
  url?: string;
  kind?: string;
  /** Why no server is available (tests that need one fail with it; the others run). */
  error?: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    switchyardPostgres: ProvidedTestPostgres;
  }
}
