import { describe, expect, it } from 'vitest';
import { CredentialSnapshot, credentialDigest } from './credential-snapshot.ts';

function snapshotOver(held: string[], refreshMs = 5_000) {
  let t = 0;
  const counts = { loads: 0 };
  const snapshot = new CredentialSnapshot({
    load: async () => {
      counts.loads++;
      return [...held];
    },
    refreshMs,
    now: () => t,
  });
  return { snapshot, counts, advance: (ms: number) => (t += ms) };
}

describe('CredentialSnapshot', () => {
  it('answers misses from memory: one load per refreshMs, however many wrong digests', async () => {
    const { snapshot, counts, advance } = snapshotOver(['right']);
    for (let i = 0; i < 1_000; i++) expect(await snapshot.mayHold(`wrong-${i}`)).toBe(false);
    expect(counts.loads).toBe(1);
    expect(await snapshot.mayHold('right')).toBe(true);
    advance(5_000);
    expect(await snapshot.mayHold('wrong-again')).toBe(false);
    expect(counts.loads).toBe(2);
  });

  it('a credential added elsewhere is found by the first miss once refreshMs has passed (the bound on a stale miss)', async () => {
    const held = ['old'];
    const { snapshot, advance } = snapshotOver(held);
    expect(await snapshot.mayHold('new')).toBe(false);
    held.push('new'); // created in another process
    advance(4_999);
    expect(await snapshot.mayHold('new')).toBe(false);
    advance(1);
    expect(await snapshot.mayHold('new')).toBe(true);
  });

  it('invalidate (a credential created here) makes the next miss load at once', async () => {
    const held = ['old'];
    const { snapshot, counts } = snapshotOver(held);
    expect(await snapshot.mayHold('new')).toBe(false);
    held.push('new');
    snapshot.invalidate();
    expect(await snapshot.mayHold('new')).toBe(true);
    expect(counts.loads).toBe(2);
  });

  it('concurrent misses share one load', async () => {
    const { snapshot, counts } = snapshotOver(['right']);
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => snapshot.mayHold(`w-${i}`)));
    expect(answers.every((a) => a === false)).toBe(true);
    expect(counts.loads).toBe(1);
  });

  it('digests are scoped: the same secret on another subscription is another digest', () => {
    expect(credentialDigest('crm', 's3cret')).not.toBe(credentialDigest('erp', 's3cret'));
    expect(credentialDigest('crm', 's3cret')).toMatch(/^[0-9a-f]{64}$/);
    expect(credentialDigest('crm', 's3cret')).not.toContain('s3cret');
  });
});
