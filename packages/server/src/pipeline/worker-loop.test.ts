import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { WorkerLoop } from './worker-loop.ts';

describe('WorkerLoop', () => {
  it('says a pass that keeps failing once, with its stack, and counts the rest at debug', async () => {
    const lines: { level: number; msg: string; err?: { stack?: string } }[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => lines.push(JSON.parse(line)) });
    let passes = 0;
    let sixth!: () => void;
    const sixPasses = new Promise<void>((resolve) => {
      sixth = resolve;
    });
    const loop: WorkerLoop = new WorkerLoop(
      'test',
      async () => {
        passes++;
        if (passes === 6) sixth();
        // The wake-up skips the back-off sleep: the loop runs the next pass at once.
        else loop.wake();
        throw new Error('a persistent fault');
      },
      60_000,
      logger,
    );
    loop.start();
    await sixPasses;
    await loop.stop();
    const failed = lines.filter((l) => l.msg.startsWith('worker pass failed'));
    expect(passes).toBe(6);
    expect(failed).toHaveLength(passes);
    const warned = failed.filter((l) => l.level === 40);
    expect(warned).toHaveLength(1);
    expect(warned[0]!.err?.stack).toContain('a persistent fault');
    expect(failed.filter((l) => l.level === 20)).toHaveLength(passes - 1);
  });
});
