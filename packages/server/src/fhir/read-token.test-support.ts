/**
 * A FHIR read token for a subscription, through the admin API as an operator makes one
 * (`POST /v1/subscriptions/{id}/fhir-read-token`), for the FHIR endpoint's tests.
 */

/**
 * Creates (or rotates) the read token of `subscriptionId` on the hub at `baseUrl`.
 *
 * @example
 * ```ts
 * const { body } = await createReadToken(hub.base, ADMIN, 'ehr');
 * await fetch(`${hub.base}/fhir/r4/Appointment`, { headers: { authorization: `Bearer ${body.token}` } });
 * ```
 */
export async function createReadToken(
  baseUrl: string,
  adminToken: string,
  subscriptionId: string,
): Promise<{ status: number; body: { token: string; hint: string } }> {
  const res = await fetch(`${baseUrl}/v1/subscriptions/${subscriptionId}/fhir-read-token`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}` },
  });
  return { status: res.status, body: (await res.json()) as { token: string; hint: string } };
}
