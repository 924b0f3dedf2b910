/**
 * Approval gates: synchronous "may this booking happen?" requests from vendors, answered by the
 * hub's approver subscriptions. See docs/gates.md.
 *
 * @example
 * ```ts
 * import { createGates, gateRoutes } from './gates/index.ts';
 * const gates = createGates();
 * const hub = await createHub({ ...config, ...gates.hooks });
 * await hub.start();
 * await gates.start(hub.host);
 * ```
 */
export {
  createGates,
  DEFAULT_MATCH_WINDOW_MS,
  GATE_QUEUE,
  GATE_RETENTION_QUEUE,
  type GatePurgeResult,
  type Gates,
  type GatesOptions,
} from './gates.ts';
export { gateRequestDetailSchema, gateRequestSchema, gateRoutes } from './http.ts';
export {
  type ApproverAnswer,
  approverMatches,
  DEFAULT_POLICY,
  decide,
  type GatePolicy,
  readAnswer,
  resolvePolicy,
  type Verdict,
} from './protocol.ts';
export {
  type GateAnswer,
  type GateBooking,
  type GateListQuery,
  type GateRequest,
  type GateRequestDetail,
  getGate,
  listGates,
} from './views.ts';
