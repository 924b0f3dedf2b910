import { describe, expect, it } from 'vitest';
import { type AddressClass, checkDestination, classifyAddress } from './ssrf.ts';

const fakeDns = (table: Record<string, string[]>) => async (host: string) => {
  const found = table[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found;
};

describe('classifyAddress', () => {
  const cases: Array<[string, AddressClass]> = [
    ['127.0.0.1', 'loopback'],
    ['127.255.1.2', 'loopback'],
    ['::1', 'loopback'],
    ['10.0.0.1', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['169.254.170.23', 'metadata'],
    ['fd00:ec2::23', 'metadata'],
    ['fd20:ce::254', 'metadata'],
    ['::ffff:169.254.170.23', 'metadata'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::127.0.0.1', 'loopback'],
    ['64:ff9b::a00:1', 'private'],
    ['2002:7f00:1::', 'loopback'],
    ['[::1]', 'loopback'],
    ['8.8.8.8', 'public'],
    ['172.32.0.1', 'public'],
    ['100.128.0.1', 'public'],
    ['2606:4700:4700::1111', 'public'],
    ['::ffff:8.8.8.8', 'public'],
  ];
  it.each(cases)('%s is %s', (address, expected) => {
    expect(classifyAddress(address)).toBe(expected);
  });

  it('throws for text that is not an address', () => {
    expect(() => classifyAddress('example.com')).toThrow(TypeError);
  });
});

describe('checkDestination', () => {
  it('passes public addresses and returns what it checked', async () => {
    expect(await checkDestination('https://93.184.215.14/hook')).toEqual({
      ok: true,
      addresses: ['93.184.215.14'],
    });
    const lookup = fakeDns({
      'hooks.example.com': ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    });
    expect(await checkDestination('https://hooks.example.com/x?token=abc', { lookup })).toEqual({
      ok: true,
      addresses: ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c'],
    });
  });

  it.each([
    'http://127.0.0.1:8080/',
    'http://[::1]/',
    'http://2130706433/',
    'http://0x7f.1/',
    'http://[::ffff:127.0.0.1]/',
    'http://10.1.2.3/',
    'http://192.168.0.10/',
    'http://100.64.1.1/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fd00:ec2::254]/',
    'http://0.0.0.0:3000/',
    'http://[::]/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://[fe80::1]/',
  ])('refuses %s by default', async (url) => {
    const result = await checkDestination(url);
    expect(result).toMatchObject({ ok: false, kind: 'refused' });
  });

  it('refuses a name when any of its addresses is refused, naming the address but not the URL', async () => {
    const lookup = fakeDns({ 'evil.example': ['93.184.215.14', '10.0.0.5'] });
    const result = await checkDestination('https://evil.example/hook?token=s3cr3t', { lookup });
    expect(result).toMatchObject({ ok: false, kind: 'refused' });
    if (!result.ok) {
      expect(result.reason).toContain('10.0.0.5');
      expect(result.reason).not.toContain('s3cr3t');
    }
  });

  it('refuses metadata host names without asking DNS', async () => {
    const lookup = async () => {
      throw new Error('must not be called');
    };
    for (const url of [
      'http://metadata.google.internal/computeMetadata/v1/',
      'http://METADATA.google.internal./',
    ]) {
      expect(await checkDestination(url, { lookup })).toMatchObject({ ok: false, kind: 'refused' });
    }
  });

  it('allows loopback only with allowLoopback, private only with allowPrivate, metadata never', async () => {
    expect(await checkDestination('http://127.0.0.1:1/', { allowLoopback: true })).toEqual({
      ok: true,
      addresses: ['127.0.0.1'],
    });
    expect((await checkDestination('http://127.0.0.1:1/', { allowPrivate: true })).ok).toBe(false);
    expect((await checkDestination('http://10.0.0.1/', { allowLoopback: true })).ok).toBe(false);
    expect((await checkDestination('http://10.0.0.1/', { allowPrivate: true })).ok).toBe(true);
    expect((await checkDestination('http://[fe80::1]/', { allowPrivate: true })).ok).toBe(true);
    const all = { allowPrivate: true, allowLoopback: true };
    expect((await checkDestination('http://169.254.169.254/', all)).ok).toBe(false);
    expect((await checkDestination('http://[::ffff:169.254.169.254]/', all)).ok).toBe(false);
    expect((await checkDestination('http://0.0.0.0/', all)).ok).toBe(false);
    // Other clouds' credential endpoints, which sit inside ranges allowPrivate opens.
    for (const url of [
      'http://169.254.170.23/v1/credentials', // EKS Pod Identity
      'http://[fd00:ec2::23]/v1/credentials', // EKS Pod Identity, IPv6
      'http://[fd20:ce::254]/computeMetadata/v1/', // GCP, IPv6
    ]) {
      expect((await checkDestination(url, all)).ok, url).toBe(false);
    }
  });

  it('a refusal names the setting the operator writes (allowPrivateAddresses), and none for metadata', async () => {
    for (const url of ['http://127.0.0.1:1/', 'http://10.0.0.1/', 'http://[fe80::1]/']) {
      const result = await checkDestination(url);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.reason).toMatch(/; a subscription with allowPrivateAddresses: true may use it$/);
        expect(result.reason).not.toMatch(/allowLoopback|allowPrivate\b/);
      }
    }
    const metadata = await checkDestination('http://169.254.169.254/');
    expect(metadata.ok || metadata.reason).not.toContain('allowPrivateAddresses');
  });

  it('resolves localhost with the real resolver and refuses it by default', async () => {
    const result = await checkDestination('http://localhost:9/');
    expect(result).toMatchObject({ ok: false, kind: 'refused' });
    const allowed = await checkDestination('http://localhost:9/', { allowLoopback: true });
    expect(allowed.ok).toBe(true);
  });

  it.each([
    ['ftp://example.com/', /scheme/],
    ['file:///etc/passwd', /scheme/],
    ['javascript:alert(1)', /scheme/],
    ['not a url', /absolute URL/],
    ['/relative', /absolute URL/],
    ['https://user:pass@example.com/', /credentials/],
    ['https://user@example.com/', /credentials/],
  ])('refuses %s as an invalid URL', async (url, reason) => {
    const result = await checkDestination(url, { lookup: fakeDns({ 'example.com': ['93.184.215.14'] }) });
    expect(result).toMatchObject({ ok: false, kind: 'invalid_url' });
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('reports names that do not resolve as dns failures', async () => {
    const result = await checkDestination('https://nowhere.invalid/', { lookup: fakeDns({}) });
    expect(result).toEqual({ ok: false, kind: 'dns', reason: 'nowhere.invalid did not resolve (ENOTFOUND)' });
    expect(await checkDestination('https://empty.example/', { lookup: async () => [] })).toMatchObject({
      ok: false,
      kind: 'dns',
    });
  });
});
