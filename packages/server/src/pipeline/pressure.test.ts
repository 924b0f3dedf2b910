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

  it('each push that reaches the threshold again extends the hold', () => {
    let now = 0;
    const pressure = new IngestPressure(2, 100, () => now);
    pressure.begin();
    pressure.begin();
    now = 90;
    pressure.end();
    pressure.begin(); // two wait again
    now = 150;
    expect(pressure.pressed).toBe(true);
    now = 190;
    expect(pressure.pressed).toBe(false);
  });

  it('adds up the time pressed: each mark until the next one, at most the hold', () => {
    let now = 0;
    const pressure = new IngestPressure(1, 100, () => now);
    expect(pressure.pressedSeconds).toBe(0);
    pressure.begin(); // pressed from 0
    now = 40;
    pressure.begin(); // again at 40: 0–40 counted
    now = 500;
    expect(pressure.pressedSeconds).toBeCloseTo(0.14); // 40 + the hold after 40
    pressure.begin(); // a second episode from 500
    now = 550;
    expect(pressure.pressedSeconds).toBeCloseTo(0.19);
  });

  it('with an infinite threshold (ingest first off) is never pressed', () => {
    const pressure = new IngestPressure(Number.POSITIVE_INFINITY);
    for (let i = 0; i < 1000; i++) pressure.begin();
    expect(pressure.pressed).toBe(false);
  });
});
