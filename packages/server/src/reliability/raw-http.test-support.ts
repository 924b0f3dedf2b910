/**
 * An HTTP/1.1 client on a bare socket, for hostile requests fetch refuses to send: raw paths with
 * `..` and odd encodings, header injection attempts, bodies that lie about their length.
 */
import net from 'node:net';

/** A parsed answer; `status` 0 when the server closed without answering. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `head` (request line and headers, without the blank line) and `body`, adds
 * `Content-Length` unless `head` has one, and reads the answer until the server closes.
 *
 * @example
 * ```ts
 * const a = await rawRequest(port, 'POST /hooks/../v1/subscriptions HTTP/1.1\r\nHost: x', Buffer.from('{}'));
 * ```
 */
export function rawRequest(
  port: number,
  head: string,
  body: Buffer = Buffer.alloc(0),
  timeoutMs = 15_000,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer in ${timeoutMs} ms to ${JSON.stringify(head.slice(0, 200))}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      resolve(parse(Buffer.concat(chunks)));
    };
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', finish);
    // The server may answer (413, 400) and close before reading everything we send.
    socket.on('error', finish);
    const hasLength = /\r\ncontent-length:/i.test(`\r\n${head}`);
    const lines = `${head}\r\nConnection: close${hasLength ? '' : `\r\nContent-Length: ${body.length}`}\r\n\r\n`;
    // No half-close: the server closes after its answer (Connection: close).
    socket.write(Buffer.concat([Buffer.from(lines, 'latin1'), body]));
  });
}

function parse(all: Buffer): RawAnswer {
  let raw = all;
  // Skip interim answers (100 Continue).
  while (
    /^HTTP\/1\.[01] 1\d\d /.test(raw.subarray(0, 13).toString('latin1')) &&
    raw.indexOf('\r\n\r\n') !== -1
  ) {
    raw = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
  }
  const split = raw.indexOf('\r\n\r\n');
  if (raw.length === 0 || split === -1) return { status: 0, headers: {}, body: raw.toString('utf8') };
  const [statusLine, ...lines] = raw.subarray(0, split).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  let body = raw.subarray(split + 4);
  if (headers['transfer-encoding']?.includes('chunked')) {
    const out: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', at);
      if (eol === -1) break;
      const size = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (!size) break;
      out.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(out);
  }
  return { status: Number(statusLine?.split(' ')[1] ?? 0), headers, body: body.toString('utf8') };
}
