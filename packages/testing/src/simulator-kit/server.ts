/**
 * The small HTTP server a simulator serves its vendor API from (Docplanner, Clockwise.MD): on
 * 127.0.0.1, a free port, closed with its keep-alive connections so tests never wait on them.
 *
 * Simulators import it as `@switchyard/testing/simulator-kit/server`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A started server and its base URL (`http://127.0.0.1:<port>`). */
export interface LocalServer {
  server: Server;
  url: string;
}

/**
 * Serves `handle` on 127.0.0.1; a handler that throws gets `onError` (the simulator's own error
 * answer).
 *
 * @example
 * ```ts
 * const { server, url } = await listenLocal(async (req, res) => res.end('ok'), (_e, _req, res) => res.end());
 * await closeServer(server);
 * ```
 */
export async function listenLocal(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  onError: (error: Error, req: IncomingMessage, res: ServerResponse) => void,
): Promise<LocalServer> {
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => onError(error as Error, req, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** Closes a server, dropping idle keep-alive connections first. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** Reads a request body as UTF-8 text. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
