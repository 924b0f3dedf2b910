import { describe, expect, it } from 'vitest';
import { progressBar } from './progress.ts';

function sink(isTTY: boolean) {
  let text = '';
  return { stream: { isTTY, columns: 100, write: (t: string) => (text += t) }, text: () => text };
}

describe('progressBar', () => {
  it('draws in place on a TTY and ends the line', () => {
    const out = sink(true);
    const bar = progressBar(out.stream, 4, 'replay', 0);
    bar.update(1);
    bar.update(4, '0 dead');
    bar.finish();
    expect(out.text()).toContain('replay [');
    expect(out.text()).toContain(' 25% 1/4');
    expect(out.text()).toContain('100% 4/4 0 dead');
    expect(out.text().endsWith('\n')).toBe(true);
  });

  it('writes nothing when not on a terminal', () => {
    const out = sink(false);
    const bar = progressBar(out.stream, 4, 'replay', 0);
    bar.update(2);
    bar.finish();
    expect(out.text()).toBe('');
  });
});
