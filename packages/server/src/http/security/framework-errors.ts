/**
 * Problem answers for the errors fastify raises before any route or error handler runs: a URL
 * with broken percent-encoding (`/hooks/%`) and a request the HTTP parser refuses (bad header
 * characters, oversized headers). Fastify's defaults answer those with its own JSON shape;
 * every Switchyard error answer is `application/problem+json`, and below `/fhir/r4` an OperationOutcome.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest, FastifyServerOptions } from 'fastify';
import { operationOutcome } from '../../fhir/read.ts';
import { problemOf } from '../errors.ts';
import { pathOf, sendProblem } from '../plugins/problem.ts';
import { FHIR_CACHE_CONTROL, FHIR_JSON, FHIR_PREFIX } from '../routes/fhir.ts';
import { endLingering } from './request-limits.ts';

/**
 * The `frameworkErrors` and `clientErrorHandler` options for `Fastify()`.
 *
 * @example
 * ```ts
 * const app = Fastify({ ...problemFrameworkErrors(), bodyLimit });
 * ```
 */
export function problemFrameworkErrors(): Pick<
  FastifyServerOptions,
  'frameworkErrors' | 'clientErrorHandler'
> {
  return {
    frameworkErrors(error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
      // The URL is what could not be decoded: never echo it raw into the detail.
      const problem = problemOf(
        'SY_HTTP_BAD_REQUEST',
        `the request URL could not be decoded (${error.code})`,
        safePath(request),
      );
      // No route scope ran, so the FHIR endpoint's own rewriting of errors did not either: its
      // clients read an OperationOutcome (docs/fhir.md: every error of /fhir/r4 is one).
      if (request.url.startsWith(`${FHIR_PREFIX}/`)) {
        void reply
          .code(problem.status)
          .header('cache-control', FHIR_CACHE_CONTROL)
          .type(FHIR_JSON)
          .send(JSON.stringify(operationOutcome(problem.status, problem.code, problem.detail)));
        return;
      }
      void sendProblem(reply, problem);
    },
    clientErrorHandler(error: Error & { code?: string }, socket: Socket) {
      if (error.code === 'ECONNRESET' || socket.destroyed) return;
      const status =
        error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const problem =
        status === 408
          ? problemOf('SY_HTTP_REQUEST_TIMEOUT', 'the request did not arrive in time', '')
          : problemOf(
              'SY_HTTP_BAD_REQUEST',
              `the HTTP request is malformed (${error.code ?? 'parse error'})`,
              '',
              {
                status,
              },
            );
      // Not writable: answered already (a second parse error as a lingering client closes).
      if (!socket.writable) {
        socket.destroy();
        return;
      }
      const body = JSON.stringify(problem);
      socket.write(
        `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `Content-Type: application/problem+json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
      );
      // The client may still be sending: the rest of a body that came too slowly (408), or of a
      // request whose head the parser refused (400, 431). Destroying the socket at once had the
      // kernel answer those bytes with a reset, and the client lose the answer.
      endLingering(socket);
    },
  };
}

function safePath(request: FastifyRequest): string {
  try {
    return encodeURI(decodeURI(pathOf(request)));
  } catch {
    return '';
  }
}
