/**
 * Where subsystems plug into the pipeline: hooks given to `createHub` (`{ ...gates.hooks,
 * ...commands.hooks }`). The pipeline calls them; it never imports a subsystem.
 */
import type { EventDraft, InboundResponse, VendorNotification } from '@switchyard/core';

/** Hook for the gate machinery: may replace the acknowledgement of a request carrying gates. */
export type GateResponder = (gate: {
  instanceId: string;
  connector: string;
  notifications: readonly VendorNotification[];
  /**
   * The ids of the gate notifications this request stored, once its durable write is done (a
   * vendor retry's were stored before: fewer here, the responder looks them up). Handed over
   * before the write ends, so the responder answers by its deadline even while the write hangs (a
   * silent database connection is given up only after 15 s); it rejects when the write failed, and
   * the responder then answers nothing (undefined): ingest answers as for any push it could not store.
   */
  messageIds: Promise<string[]>;
  config: Record<string, unknown>;
  /**
   * When the vendor's request arrived: its deadline runs from then, so time spent before the
   * responder is called (the durable write) counts against it, as it does for the vendor.
   */
  receivedAt?: Date;
}) => Promise<InboundResponse | undefined>;

/**
 * Hook called after a notification's events are stored (HubConfig.afterNormalize); the gate
 * machinery uses it to match a booking to the approval request that preceded it.
 */
export type AfterNormalize = (normalized: {
  instanceId: string;
  connector: string;
  inboundId: string;
  notification: VendorNotification;
  events: readonly { id: string; type: string; subject: string }[];
}) => Promise<void>;

/**
 * Hook called with a notification's event drafts before they are validated and stored
 * (HubConfig.markEchoes); it may set `data.causedBy` on drafts that echo a hub command.
 */
export type MarkEchoes = (instanceId: string, drafts: EventDraft[]) => Promise<void>;
