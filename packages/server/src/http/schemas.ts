/**
 * JSON Schemas of the HTTP layer's own answers: the problem document every error carries. The
 * pieces every admin route builds its answers from are `admin/schemas.ts`, and each concept's answers are declared beside the concept, in its
 * `routes.ts`. The OpenAPI document is generated from the same objects.
 */
import { int, object, type Schema, str } from '../admin/schemas.ts';

export const problem: Schema = {
  type: 'object',
  description: 'RFC 9457 problem details.',
  required: ['type', 'title', 'status', 'detail', 'instance', 'code'],
  properties: {
    type: { type: 'string', format: 'uri' },
    title: str,
    status: int,
    detail: str,
    instance: str,
    code: { type: 'string', description: 'A code from docs/errors.md.' },
    errors: {
      type: 'array',
      items: object({ in: str, pointer: str, message: str }),
    },
    details: { type: 'object', additionalProperties: true },
  },
};
