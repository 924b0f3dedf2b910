/** The generated types of ./schema.ts (`pnpm generate`, listed in scripts/generators.ts). */
import { conceptTypesGenerator } from '../admin/generate.ts';
import { subscriptionCreateSchema, subscriptionSchema, subscriptionUpdateSchema } from './schema.ts';

export const subscriptionsGenerator = conceptTypesGenerator('subscriptions', [
  subscriptionCreateSchema,
  subscriptionUpdateSchema,
  subscriptionSchema,
]);
