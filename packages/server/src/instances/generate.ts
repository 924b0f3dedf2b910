/** The generated types of ./schema.ts (`pnpm generate`, listed in scripts/generators.ts). */
import { conceptTypesGenerator } from '../admin/generate.ts';
import { instanceCreateSchema, instanceReplaceSchema, instanceSchema } from './schema.ts';

export const instancesGenerator = conceptTypesGenerator('instances', [
  instanceCreateSchema,
  instanceReplaceSchema,
  instanceSchema,
]);
