import { describe, it, expect } from '@jest/globals';
import { runDemo } from './demo';

describe('npm start demo', () => {
  it('faults, forks, COW-breaks, frees everything and keeps the invariants', () => {
    const lines: string[] = [];
    expect(runDemo((l) => lines.push(l))).toEqual([]);
    const text = lines.join('\n');
    expect(text).toContain('shared zero page');
    expect(text).toContain('same pfn: true');
    expect(text).toContain('cow_fault +1');
    expect(text).toContain('parent reads "hello from the parent"');
    expect(text).toContain('child reads "child from the parent"');
    expect(text).toContain('fails with EFAULT');
    expect(text).toContain('every page freed');
    expect(text).toContain('invariants: all hold');
  });
});
