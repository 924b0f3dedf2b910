import { describe, expect, it } from 'vitest';
import { IngestPressure } from './pressure.ts';

describe('IngestPressure', () => {
  it('is pressed from the moment the threshold of waiting pushes is reached, for the hold after it', () => {
    let now = 1000;
    const pressure = new IngestPressure(3, 200, () => now);
    pressure.begin();
    pressure.begin();
    expect(pressure.pressed).toBe(false);
    pressure.begin();
    expect(pressure.pressed).toBe(true);
    // The group commit answers them all: the hold keeps it pressed.
    pressure.end();
    pressure.end();
    pressure.end();
    now += 199;
    expect(pressure.pressed).toBe(true);
    now += 1;
    expect(pressure.pressed).toBe(false);
  });

  it('stays pressed while that many wait, however long; the hold starts when they no longer do', () => {
    let now = 0;
    const pressure = new IngestPressure(2, 100, () => now);
    pressure.begin();
    pressure.begin();
    // A slow commit: both wait for ten holds.
    now = 1000;
    expect(pressure.pressed).toBe(true);
    pressure.end(); // one is written at 1000
    now = 1099;
    expect(pressure.pressed).toBe(true);
    now = 1100;
    expect(pressure.pressed).toBe(false);
    expect(pressure.pressedSeconds).toBeCloseTo(1.1);
  });

  it('each time the threshold is reached again, the hold starts over', () => {
    let now = 0;
    const pressure = new IngestPressure(2, 100, () => now);
    pressure.begin();
    pressure.begin();
    now = 50;
    pressure.end(); // below from 50
    now = 90;
    pressure.begin(); // two wait again
    now = 120;
    pressure.end(); // below from 120
    now = 219;
    expect(pressure.pressed).toBe(true);
    now = 220;
    expect(pressure.pressed).toBe(false);
  });

  it('adds up the time pressed: while above, and at most the hold after each time below', () => {
    let now = 0;
    const pressure = new IngestPressure(1, 100, () => now);
    expect(pressure.pressedSeconds).toBe(0);
    pressure.begin(); // pressed from 0
    now = 40;
    pressure.end(); // below at 40: 0–40 above
    now = 500;
    expect(pressure.pressedSeconds).toBeCloseTo(0.14); // 40 + the hold after 40
    pressure.begin(); // a second episode from 500
    now = 550;
    expect(pressure.pressedSeconds).toBeCloseTo(0.19);
    pressure.end(); // below at 550
    now = 570;
    pressure.begin(); // within the hold: 550–570 counted, pressed again
    now = 600;
    expect(pressure.pressedSeconds).toBeCloseTo(0.24);
  });

  it('with an infinite threshold (ingest first off) is never pressed', () => {
    const pressure = new IngestPressure(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 1000; i++) pressure.begin();
    expect(pressure.pressed).toBe(false);
    for (let i = 0; i < 1000; i++) pressure.end();
    expect(pressure.pressedSeconds).toBe(0);
  });
});
