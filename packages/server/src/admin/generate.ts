/**
 * Generates the TypeScript types of an admin concept's schemas (`<concept>/generated/input.ts`)
 * the way core generates its event types: json-schema-to-typescript over the concept's schema.ts.
 * Each concept's generate.ts is listed in `scripts/generators.ts`, so `pnpm generate:check` fails
 * when a file is stale.
 */
import type { JsonSchema } from '@switchyard/core';
import { compile, type JSONSchema } from 'json-schema-to-typescript';

/** The top-level timestamps of a view are Date objects in the library API (JSON: strings). */
const DATE_FIELDS = ['createdAt', 'updatedAt', 'disabledAt'];

/**
 * An enum this long (the event catalog a subscription filter names) is checked at run time and
 * typed as a string: as a union of literals every list written in code would need a cast.
 * `openLongEnums` marks them so (`tsType`) in a schema about to be compiled; config/generate.ts too.
 */
const LONG_ENUM = 20;

export function openLongEnums(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(openLongEnums);
  if (node === null || typeof node !== 'object') return node;
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, openLongEnums(v)]));
  if (Array.isArray(out.enum) && out.enum.length > LONG_ENUM) out.tsType = 'string';
  return out;
}

function forTypes(schema: JsonSchema): JSONSchema {
  const { $id: _id, ...rest } = openLongEnums(schema) as JsonSchema;
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

/** A concept's generated file, exactly. */
export async function typesFileContent(folder: string, schemas: readonly JsonSchema[]): Promise<string> {
  const parts: string[] = [];
  for (const schema of schemas) {
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
  return `/* Generated from packages/server/src/${folder}/schema.ts by pnpm generate. Do not edit. */\n\n${parts.join('\n\n')}\n`;
}

/**
 * The generator of one concept's types, for `scripts/generators.ts` (each concept's generate.ts
 * makes its own, so this folder imports no concept).
 *
 * @example
 * ```ts
 * export const subscriptionsGenerator = conceptTypesGenerator('subscriptions', [subscriptionCreateSchema]);
 * ```
 */
export function conceptTypesGenerator(folder: string, schemas: readonly JsonSchema[]) {
  return {
    name: `server ${folder}`,
    ownedDirs: [`packages/server/src/${folder}/generated`] as readonly string[],
    async outputs(): Promise<Array<{ path: string; content: string }>> {
      return [
        {
          path: `packages/server/src/${folder}/generated/input.ts`,
          content: await typesFileContent(folder, schemas),
        },
      ];
    },
  };
}
