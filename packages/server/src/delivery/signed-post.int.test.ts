import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeDeliveryAgents } from './http-post.ts';
import { generateSecret, verifySignature } from './sign.ts';
import { postSigned } from './signed-post.ts';

interface Seen {
  headers: http.IncomingHttpHeaders;
  body: string;
}

const seen: Seen[] = [];
let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      seen.push({ headers: req.headers, body: Buffer.concat(parts).toString('utf8') });
      res.writeHead(202, { 'content-type': 'text/plain' }).end('taken');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
});

afterAll(async () => {
  closeDeliveryAgents();
  await new Promise((resolve) => server.close(resolve));
});

describe('postSigned', () => {
  const target = (over: Partial<Parameters<typeof postSigned>[0]> = {}) => ({
    url,
    contentType: 'application/cloudevents+json',
    timeoutMs: 5000,
    allowPrivateAddresses: true,
    secrets: [] as string[],
    ...over,
  });

  it('signs with every secret in force: the receiver verifies with either one', async () => {
    const current = generateSecret();
    const previous = generateSecret();
    const body = JSON.stringify({ id: 'ev-1', type: 'appointment.created' });
    const r = await postSigned(target({ secrets: [current, previous] }), 'ev-1', body, 2048);
    expect(r).toMatchObject({ ok: true, status: 202, responseSnippet: 'taken' });
    const got = seen.at(-1)!;
    expect(got.body).toBe(body);
    expect(got.headers['webhook-id']).toBe('ev-1');
    expect(got.headers['content-type']).toBe('application/cloudevents+json');
    expect(verifySignature({ headers: got.headers, body: got.body, secrets: [current] })).toEqual({
      ok: true,
      secretIndex: 0,
    });
    expect(verifySignature({ headers: got.headers, body: got.body, secrets: [previous] }).ok).toBe(true);
    expect(verifySignature({ headers: got.headers, body: got.body, secrets: [generateSecret()] }).ok).toBe(
      false,
    );
  });

  it('sends the id and timestamp unsigned when there is no secret', async () => {
    await postSigned(target(), 'ev-2', '{}', 2048);
    const got = seen.at(-1)!;
    expect(got.headers['webhook-id']).toBe('ev-2');
    expect(got.headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(got.headers['webhook-signature']).toBeUndefined();
  });

  it('keeps to the destination policy: loopback refused unless the target allows private addresses', async () => {
    const before = seen.length;
    const r = await postSigned(target({ allowPrivateAddresses: false }), 'ev-3', '{}', 2048);
    expect(r).toMatchObject({ ok: false, errorKind: 'ssrf' });
    expect(seen).toHaveLength(before);
  });
});
