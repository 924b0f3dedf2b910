import { describe, expect, it } from 'vitest';
import { postBody, postJson } from './push.ts';
import { startHookReceiver } from './receiver.ts';

describe('postBody', () => {
  it('sends the body byte for byte (a form a signature covers), with the headers given', async () => {
    const receiver = await startHookReceiver();
    try {
      const form = 'action=scheduled&id=54321&note=caf%C3%A9+%26+co';
      const r = await postBody(
        receiver.url,
        { 'content-type': 'application/x-www-form-urlencoded', 'x-sig': 's' },
        form,
        5_000,
      );
      expect(r.status).toBe(200);
      await postBody(receiver.url, { 'content-type': 'text/plain' }, Buffer.from('raw bytes'), 5_000);
      await postJson(receiver.url, { 'content-type': 'application/json' }, { id: 1 }, 5_000);
      expect(receiver.received.map((p) => p.body)).toEqual([form, 'raw bytes', '{"id":1}']);
      expect(receiver.received[0]!.headers).toMatchObject({
        'content-type': 'application/x-www-form-urlencoded',
        'x-sig': 's',
      });
    } finally {
      await receiver.close();
    }
  });

  it('never throws: no answer is status null with the reason', async () => {
    const receiver = await startHookReceiver();
    const url = receiver.url;
    await receiver.close();
    const r = await postBody(url, {}, 'x', 2_000);
    expect(r).toMatchObject({ status: null, timedOut: false });
    expect(r.error).toBeTruthy();
  });
});
