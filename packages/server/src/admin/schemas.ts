/**
 * The JSON Schema pieces every admin route's answers are built from: the scalar shapes, a sealed
 * object, the list and page wrappers, the id and cursor parameters. Each concept's `routes.ts`
 * builds its answers' schemas from them, and routes declare those so requests are validated and
 * answers serialized through them: a property not listed (a sealed secret, an internal column) can
 * never reach a client. The OpenAPI document (`http/routes/openapi.ts`) is generated from the same
 * objects.
 */

/** A JSON Schema object. */
export type Schema = Record<string, unknown>;

export const str = { type: 'string' } as const;
export const nullableStr = { type: ['string', 'null'] } as const;
export const dateTime = { type: 'string', format: 'date-time' } as const;
export const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
export const int = { type: 'integer' } as const;
export const nullableInt = { type: ['integer', 'null'] } as const;
/** Any JSON value. */
export const anyJson = {} as const;

/**
 * A sealed object: no property beyond `properties`, `required` all of them unless given.
 *
 * @example
 * ```ts
 * const cursorAnswer = object({ cursor: str }); // { type: 'object', additionalProperties: false, ... }
 * ```
 */
export function object(
  properties: Record<string, Schema>,
  required: string[] = Object.keys(properties),
): Schema {
  return { type: 'object', additionalProperties: false, properties, required };
}

/**
 * `{ items: [...], nextCursor }` for cursor-paginated lists.
 *
 * @example
 * ```ts
 * response: { 200: pageOf(delivery) }
 * ```
 */
export function pageOf(item: Schema): Schema {
  return object({
    items: { type: 'array', items: item },
    nextCursor: {
      ...nullableStr,
      description: 'Pass as `cursor` for the next page; null when there is no more.',
    },
  });
}

/**
 * `{ items: [...] }` for short lists without pagination.
 *
 * @example
 * ```ts
 * response: { 200: listOf(subscriptionSchema) }
 * ```
 */
export function listOf(item: Schema): Schema {
  return object({ items: { type: 'array', items: item } });
}

export const idParams = object({ id: { type: 'string', minLength: 1, maxLength: 200 } });

/**
 * A regular expression source matching the decimal numbers 0..`max` written with `digits` digits
 * exactly: at each digit of `max`, either a smaller digit followed by anything, or the same digit
 * and the rest bounded the same way.
 */
function digitsAtMost(max: string): string {
  if (max.length === 0) return '';
  const head = Number(max[0]);
  const rest = max.slice(1);
  const anyRest = rest.length > 0 ? `[0-9]{${rest.length}}` : '';
  const below = head > 0 ? `[0-${head - 1}]${anyRest}` : '';
  const same = `${head}${digitsAtMost(rest)}`;
  return below ? `(?:${below}|${same})` : same;
}

/** The largest Postgres `bigint`: event sequences and list cursors are bigints. */
export const MAX_BIGINT = '9223372036854775807';

/**
 * A cursor or sequence position: decimal digits up to {@link MAX_BIGINT}. A larger value used to
 * pass the digits check and reach Postgres, whose out-of-range error (22003) became a 500; bounded
 * here, every route that takes a cursor (the lists' `cursor`, the feed's `after` and `ack`) answers
 * the schema's 400 instead. Leading zeros are allowed (they were before), within 20 characters.
 */
export const cursorParam = {
  type: 'string',
  pattern: `^0*(?:[0-9]{1,${MAX_BIGINT.length - 1}}|${digitsAtMost(MAX_BIGINT)})$`,
  maxLength: 20,
  'x-message': 'must be the nextCursor of an earlier page',
} as const;
export const limitParam = { type: 'integer', minimum: 1, maximum: 1000 } as const;
