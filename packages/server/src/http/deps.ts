import type { Hub } from '../pipeline/hub.ts';
import type { HttpMetrics } from './metrics-registry.ts';

/** What every route plugin of the app is given. */
export interface RouteDeps {
  hub: Hub;
  metrics: HttpMetrics;
}
