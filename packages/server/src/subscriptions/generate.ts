/**
 * Generates the TypeScript types of the subscription schemas (./generated/input.ts) the way core
 * generates its event types: json-schema-to-typescript over ./schema.ts. Wired into `pnpm generate`
 * through `scripts/generators.ts`, so `pnpm generate:check` fails when the file is stale.
 */
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import { subscriptionCreateSchema, subscriptionSchema, subscriptionUpdateSchema } from './schema.ts';

export const TYPES_PATH = 'packages/server/src/subscriptions/generated/input.ts';

/** The top-level timestamps of a subscription are Date objects in the library API (JSON: strings). */
const DATE_FIELDS = ['createdAt', 'updatedAt', 'disabledAt'];

function forTypes(schema: Record<string, unknown>): JSONSchema {
  const { $id: _id, ...rest } = schema;
  const properties = rest.properties as Record<string, Record<string, unknown>>;
  return {
    ...rest,
    properties: Object.fromEntries(
      Object.entries(properties).map(([name, prop]) => [
        name,
        DATE_FIELDS.includes(name) && prop.format === 'date-time'
          ? { ...prop, tsType: Array.isArray(prop.type) ? 'Date | null' : 'Date' }
          : prop,
      ]),
    ),
  } as JSONSchema;
}

/** The generated file's exact content. */
export async function typesFileContent(): Promise<string> {
  const parts: string[] = [];
  for (const schema of [subscriptionCreateSchema, subscriptionUpdateSchema, subscriptionSchema]) {
    const title = String(schema.title);
    parts.push(
      (
        await compile(forTypes(schema), title, {
          bannerComment: '',
          additionalProperties: false,
          format: true,
          unknownAny: true,
          strictIndexSignatures: false,
          declareExternallyReferenced: true,
          // Tuples for minItems/maxItems would make every list literal awkward to type; the schema checks them.
          ignoreMinAndMaxItems: true,
        })
      ).trim(),
    );
  }
  return `/* Generated from packages/server/src/subscriptions/schema.ts by pnpm generate. Do not edit. */\n\n${parts.join('\n\n')}\n`;
}

/**
 * The generator `scripts/generators.ts` lists.
 *
 * @example
 * ```ts
 * import { subscriptionsGenerator } from '../packages/server/src/subscriptions/generate.ts';
 * export const generators = [coreGenerator, configGenerator, subscriptionsGenerator];
 * ```
 */
export const subscriptionsGenerator = {
  name: 'server subscriptions',
  ownedDirs: ['packages/server/src/subscriptions/generated'] as readonly string[],
  async outputs(): Promise<Array<{ path: string; content: string }>> {
    return [{ path: TYPES_PATH, content: await typesFileContent() }];
  },
};
