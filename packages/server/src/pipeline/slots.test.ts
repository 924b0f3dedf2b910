import { describe, expect, it } from 'vitest';
import { SlotLedger } from './slots.ts';

function ledger(capacity = 8) {
  let wakes = 0;
  const slots = new SlotLedger(
    () => capacity,
    () => {
      wakes++;
    },
  );
  return { slots, wakes: () => wakes };
}

describe('SlotLedger', () => {
  it('lets a pass claim only once a quarter of the slots are free, and marks it behind otherwise', async () => {
    const { slots } = ledger(8);
    expect(slots.claimable(64)).toBe(8);
    slots.active = 7;
    expect(slots.claimable(64)).toBe(0);
    expect(slots.behind).toBe(true);
    slots.active = 6;
    expect(slots.claimable(64)).toBe(2);
  });

  it('promises nothing while not accepting or behind, and never more than is free', async () => {
    const { slots } = ledger(8);
    expect(slots.reserve(4)).toBe(0);
    slots.accept(true);
    expect(slots.reserve(5)).toBe(5);
    expect(slots.reserve(5)).toBe(3);
    slots.release(8);
    // A claim that fills its batch leaves the worker behind: nothing is promised until one that does not.
    await slots.claim(
      4,
      async () => [1, 2, 3, 4],
      (r) => r.length,
    );
    expect(slots.reserve(1)).toBe(0);
    await slots.claim(
      4,
      async () => [1],
      (r) => r.length,
    );
    expect(slots.reserve(1)).toBe(1);
  });

  it('holds the claim’s slots while it runs, and wakes a pass skipped for promised slots when they come back', async () => {
    const { slots, wakes } = ledger(8);
    slots.accept(true);
    let during = -1;
    await slots.claim(
      6,
      async () => {
        during = slots.reserve(8);
        return [];
      },
      (r) => r.length,
    );
    expect(during).toBe(2);
    // With the rest busy, the promised slots make a pass skip without marking a backlog; their
    // release wakes it.
    slots.active = 6;
    expect(slots.claimable(64)).toBe(0);
    expect(slots.behind).toBe(false);
    expect(wakes()).toBe(0);
    slots.release(2);
    expect(wakes()).toBe(1);
    slots.release(0);
    expect(wakes()).toBe(1);
  });

  it('counts the claimed work in use as the claim resolves, before its caller starts it', async () => {
    const { slots } = ledger(4);
    slots.accept(true);
    let reserved = -1;
    const claiming = slots.claim(
      3,
      async () => ['a', 'b'],
      (r) => r.length,
    );
    // A statement promised slots between the claim's end and the worker's next step (a microtask
    // in between) sees the claimed two in use.
    void claiming.then(() => {
      reserved = slots.reserve(4);
    });
    await claiming;
    expect(slots.active).toBe(2);
    expect(reserved).toBe(2);
    slots.done();
    slots.done();
    expect(slots.active).toBe(0);
  });

  it('counts the work a reservation hands over in use as it is given back', () => {
    const { slots } = ledger(4);
    slots.accept(true);
    expect(slots.reserve(3)).toBe(3);
    slots.release(3, 2);
    expect(slots.active).toBe(2);
    expect(slots.reserve(4)).toBe(2);
  });

  it('gives the claim’s slots back when it fails', async () => {
    const { slots } = ledger(4);
    slots.accept(true);
    await expect(
      slots.claim(
        4,
        async () => {
          throw new Error('down');
        },
        () => 0,
      ),
    ).rejects.toThrow('down');
    expect(slots.active).toBe(0);
    expect(slots.reserve(4)).toBe(4);
  });
});
