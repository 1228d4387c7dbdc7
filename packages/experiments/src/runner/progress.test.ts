import { describe, expect, it } from '@jest/globals';
import { SILENT_PROGRESS, terminalProgress } from './progress';

function fakeStream(isTTY: boolean) {
  const out: string[] = [];
  const stream = {
    isTTY,
    columns: 100,
    write(chunk: string) {
      out.push(String(chunk));
      return true;
    },
    on() {
      return stream;
    },
    removeListener() {
      return stream;
    },
  };
  return { stream: stream as unknown as NodeJS.WriteStream, out };
}

describe('terminalProgress', () => {
  it('is silent when the stream is not a terminal', () => {
    const { stream, out } = fakeStream(false);
    const p = terminalProgress(stream);
    expect(p).toBe(SILENT_PROGRESS);
    p.start(3);
    p.tick('none seed 1');
    p.stop();
    expect(out).toEqual([]);
  });

  it('draws a bar on a terminal and stops it (no timer left behind)', () => {
    const { stream, out } = fakeStream(true);
    const p = terminalProgress(stream);
    p.start(2);
    p.tick('none seed 1');
    p.tick('mlock seed 1');
    p.stop();
    p.stop(); // idempotent
    const text = out.join('');
    expect(text).toMatch(/svasim .* \d\/2 runs/);
  });
});
