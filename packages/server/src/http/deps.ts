import type { Hub } from '../pipeline/hub.ts';
import type { HttpMetrics } from './metrics-registry.ts';

/** What every route plugin of the app is given. */
export interface RouteDeps {
  hub: Hub;
  metrics: HttpMetrics;
  /**
   * `server.publicUrl`, when set: the base of the `hookUrl` a push's connector is given (a vendor
   * that signs the URL it was told, such as Square). Never guessed from the sender's headers.
   */
  publicUrl?: string;
}
