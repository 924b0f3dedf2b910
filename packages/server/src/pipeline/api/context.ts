import type { Connector } from '@switchyard/core';
import * as deliveryStore from '../../deliveries/store.ts';
import type { SecretCipher } from '../../delivery/secret-box.ts';
import type { DeliveryWithAttempts } from '../api-types.ts';
import type { Poller } from '../poller.ts';
import type { Runtime } from '../shared.ts';
import { toAttempt, toDelivery } from '../views.ts';

/** What the admin API sections (`instancesApi`, `subscriptionsApi`, ...) close over: one hub's state. */
export interface HubContext {
  db: Runtime['db'];
  rt: Runtime;
  cipher: SecretCipher;
  connectors: ReadonlyMap<string, Connector>;
  poller: Poller;
}

/** Deliveries with their attempt logs, loaded in one query. */
export async function withAttempts(
  db: Runtime['db'],
  rows: deliveryStore.DeliveryRow[],
): Promise<DeliveryWithAttempts[]> {
  const attempts = await deliveryStore.listAttempts(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({
    ...toDelivery(r),
    attemptLog: attempts.filter((a) => a.delivery_id === r.id).map(toAttempt),
  }));
}
