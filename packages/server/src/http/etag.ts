/**
 * Strong ETags for the documents the hub serves unchanged within a release (JSON Schemas, the
 * dashboard's page and modules), and the `If-None-Match` check that answers 304 for a current copy.
 */
import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/**
 * A strong ETag of a document's text: the same text, the same tag, in every process of a release.
 *
 * @example
 * ```ts
 * const etag = etagOf(body); // '"q1w2…"'
 * ```
 */
export function etagOf(text: string): string {
  return `"${createHash('sha256').update(text).digest('base64url').slice(0, 27)}"`;
}

/**
 * Whether `If-None-Match` names `etag` (or is `*`): the client's copy is current. Compared weakly,
 * as RFC 9110 §13.1.2 asks for If-None-Match (a proxy may have marked the tag `W/`).
 *
 * @example
 * ```ts
 * if (notModified(request, etag)) return reply.code(304).header('etag', etag).send();
 * ```
 */
export function notModified(request: FastifyRequest, etag: string): boolean {
  const header = request.headers['if-none-match'];
  if (typeof header !== 'string') return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || (t.startsWith('W/') ? t.slice(2) : t) === etag;
  });
}
