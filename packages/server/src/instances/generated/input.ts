/* Generated from packages/server/src/instances/schema.ts by pnpm generate. Do not edit. */

export interface InstanceCreate {
  /**
   * Stable id of the instance: the events' `source`, and the path of its hooks (`/hooks/{id}`). 1 to 100 letters, digits, `_`, `.`, `-`.
   */
  id: string;
  /**
   * The connector (vendor) this instance uses.
   */
  connector: string;
  /**
   * Default: push when the connector can be pushed to, else pull. push: the vendor calls `/hooks/{id}`; pull: the hub polls the vendor; both: push, with pull as a reconciliation backstop.
   */
  mode?: "push" | "pull" | "both";
  /**
   * The connector's own settings (credentials, vendor URLs), checked against its schema. Through the API, a secret field sent back as "[redacted]" keeps its stored value.
   */
  settings: {
    [k: string]: unknown;
  };
  /**
   * Polling, for mode pull or both.
   */
  pull?: {
    /**
     * How often to poll, ms (at least 100); default (left out or null): the connector's own interval.
     */
    intervalMs?: number | null;
  };
  /**
   * Synchronous approval requests (e.g. Docplanner slot-booking): how long to wait and what to answer when no approver decided.
   */
  gate?: {
    /**
     * How long approvers get before the default answer is given, ms (50 to 30000).
     */
    deadlineMs?: number;
    /**
     * The answer when the deadline passes (or no approver is subscribed).
     */
    default?: "approve" | "refuse";
  };
}

export interface InstanceReplace {
  /**
   * The connector (vendor) this instance uses.
   */
  connector: string;
  /**
   * Default: push when the connector can be pushed to, else pull. push: the vendor calls `/hooks/{id}`; pull: the hub polls the vendor; both: push, with pull as a reconciliation backstop.
   */
  mode?: "push" | "pull" | "both";
  /**
   * The connector's own settings (credentials, vendor URLs), checked against its schema. Through the API, a secret field sent back as "[redacted]" keeps its stored value.
   */
  settings: {
    [k: string]: unknown;
  };
  /**
   * Polling, for mode pull or both.
   */
  pull?: {
    /**
     * How often to poll, ms (at least 100); default (left out or null): the connector's own interval.
     */
    intervalMs?: number | null;
  };
  /**
   * Synchronous approval requests (e.g. Docplanner slot-booking): how long to wait and what to answer when no approver decided.
   */
  gate?: {
    /**
     * How long approvers get before the default answer is given, ms (50 to 30000).
     */
    deadlineMs?: number;
    /**
     * The answer when the deadline passes (or no approver is subscribed).
     */
    default?: "approve" | "refuse";
  };
}

export interface Instance {
  id: string;
  connector: string;
  /**
   * Default: push when the connector can be pushed to, else pull. push: the vendor calls `/hooks/{id}`; pull: the hub polls the vendor; both: push, with pull as a reconciliation backstop.
   */
  mode: "push" | "pull" | "both";
  /**
   * Secret fields show as "[redacted]".
   */
  settings: {
    [k: string]: unknown;
  };
  pull?: {
    intervalMs: number | null;
  };
  gate?: unknown;
  managedBy: "file" | "api";
  /**
   * Set while the instance is disabled: pushes to it are refused and it is not pulled; what it already received is still normalized.
   */
  disabledAt: Date | null;
  /**
   * Why: "no longer declared in the configuration file" for a file-managed instance the file dropped.
   */
  disabledReason: string | null;
  createdAt: Date;
  updatedAt: Date;
}
