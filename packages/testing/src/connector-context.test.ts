import { ConnectorError, isConnectorError, parseJsonBody } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import {
  inboundRequest,
  MemoryAliasStore,
  memoryCommandContext,
  memoryNormalizeContext,
} from './connector-context.ts';

describe('memoryNormalizeContext', () => {
  it('keeps one hub id per vendor id, links aliases, and lists them', async () => {
    const ctx = memoryNormalizeContext({ config: { apiKey: 'k' } });
    const first = await ctx.aliases.hubId('appointment', '100');
    expect(first).toMatch(/^[0-9a-f-]{36}$/);
    expect(await ctx.aliases.hubId('appointment', '100')).toBe(first);
    expect(await ctx.aliases.hubId('slot', '100')).not.toBe(first);
    expect(await ctx.aliases.find('appointment', '200')).toBeUndefined();
    await ctx.aliases.link('appointment', '200', first);
    await ctx.aliases.link('appointment', '200', first);
    expect(await ctx.aliases.find('appointment', '200')).toBe(first);
    expect(await ctx.aliases.vendorIds('appointment', first)).toEqual(['100', '200']);
    const other = await ctx.aliases.hubId('appointment', '300');
    await expect(ctx.aliases.link('appointment', '300', first)).rejects.toMatchObject({ kind: 'permanent' });
    expect(other).not.toBe(first);
  });

  it('stores state as copies', async () => {
    const ctx = memoryNormalizeContext({ config: {} });
    const value = { status: 'booked', tags: ['a'] };
    await ctx.state.set('booking:1', value);
    value.tags.push('mutated');
    expect(await ctx.state.get('booking:1')).toEqual({ status: 'booked', tags: ['a'] });
    await ctx.state.delete('booking:1');
    expect(await ctx.state.get('booking:1')).toBeUndefined();
  });

  it('answers vendor calls with vendorApi and records them', async () => {
    const ctx = memoryNormalizeContext({
      instanceId: 'cw-main',
      config: { apiKey: 'k' },
      attempt: 3,
      finalAttempt: true,
      vendorApi: (req) => ({ status: 200, headers: {}, body: { url: req.url } }),
    });
    expect(ctx).toMatchObject({ instanceId: 'cw-main', attempt: 3, finalAttempt: true });
    const res = await ctx.http.request({ url: 'https://api.example/appointments/1' });
    expect(res.body).toEqual({ url: 'https://api.example/appointments/1' });
    expect(ctx.vendorRequests).toEqual([{ url: 'https://api.example/appointments/1' }]);
    ctx.logger.warn({ n: 1 }, 'careful');
    expect(ctx.logger.entries).toEqual([{ level: 'warn', obj: { n: 1 }, msg: 'careful' }]);
  });

  it('throws a transient ConnectorError for vendor calls without vendorApi', async () => {
    const ctx = memoryNormalizeContext({ config: {} });
    const error = await ctx.http.request({ url: 'https://api.example/x' }).catch((e: unknown) => e);
    expect(isConnectorError(error) && error.kind).toBe('transient');
    expect(error).toBeInstanceOf(ConnectorError);
  });

  it('clones stores independently', async () => {
    const aliases = new MemoryAliasStore();
    const id = await aliases.hubId('document', 'n1');
    const copy = aliases.clone();
    await copy.hubId('document', 'n2');
    expect(await copy.find('document', 'n1')).toBe(id);
    expect(await aliases.find('document', 'n2')).toBeUndefined();
  });
});

describe('memoryCommandContext', () => {
  it("gives a handler its target, records its vendor calls, and keeps the command's store across tries", async () => {
    const ctx = memoryCommandContext({
      config: { apiBase: 'https://vendor.example/api' },
      vendorIds: ['old-1', 'current-2'],
      current: { status: 'booked' },
      vendorApi: () => ({ status: 204, headers: {}, body: '' }),
    });
    // What a cancel handler does: call for the current id, and note that it asked.
    const id = ctx.vendorIds[ctx.vendorIds.length - 1];
    await ctx.commandState.set('asked', true);
    const res = await ctx.http.request({ method: 'DELETE', url: `${ctx.config.apiBase}/bookings/${id}` });
    expect(res.status).toBe(204);
    expect(ctx.vendorRequests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'DELETE https://vendor.example/api/bookings/current-2',
    ]);
    expect(ctx.current).toEqual({ status: 'booked' });
    // A later try of the same command sees what the first one noted; a new command does not.
    const retry = memoryCommandContext({ config: ctx.config, attempt: 2, commandState: ctx.commandState });
    expect(retry.attempt).toBe(2);
    expect(await retry.commandState.get('asked')).toBe(true);
    expect(await memoryCommandContext({ config: ctx.config }).commandState.get('asked')).toBeUndefined();
  });

  it('throws a transient ConnectorError for vendor calls without vendorApi', async () => {
    const ctx = memoryCommandContext({ config: {} });
    await expect(ctx.http.request({ url: 'https://vendor.example/x' })).rejects.toThrow(/pass vendorApi/);
  });
});

describe('inboundRequest', () => {
  it('serializes object bodies as JSON with a content type and lower-cases header names', () => {
    const req = inboundRequest({
      headers: { 'X-Api-Key': 's' },
      body: { name: 'slot-booked' },
      params: { key: 'k' },
    });
    expect(req).toMatchObject({
      route: 'default',
      method: 'POST',
      params: { key: 'k' },
      query: {},
      sourceIp: '127.0.0.1',
    });
    expect(req.headers).toEqual({ 'x-api-key': 's', 'content-type': 'application/json' });
    expect(parseJsonBody(req)).toEqual({ name: 'slot-booked' });
  });

  it('keeps string and Buffer bodies as given', () => {
    expect(inboundRequest({ body: 'not json' }).rawBody.toString()).toBe('not json');
    const bytes = Buffer.from([0xff, 0x00]);
    const req = inboundRequest({ body: bytes, route: 'cancellation', query: { a: '1' } });
    expect(req.rawBody).toEqual(bytes);
    expect(req.headers['content-type']).toBeUndefined();
    expect(req).toMatchObject({ route: 'cancellation', query: { a: '1' } });
    expect(inboundRequest().rawBody.length).toBe(0);
  });
});
