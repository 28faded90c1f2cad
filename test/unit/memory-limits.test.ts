// The in-memory cap of a worker (issue #10 item 17) and the bound on dpt train's local workers
// (item 15), as pure functions of the machine's facts.

import { describe, expect, it } from 'vitest';
import { maxLocalWorkers } from '../../api/local-training.js';
import { budgetCapNote, chooseRowHolding, inMemoryCap, KERNEL_RESERVE_BYTES, WASM32_MAX_BYTES } from '../../worker/memory-limits.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const bigHost = { cgroupLimitBytes: null, hostTotalBytes: 256 * GiB, hostAvailableBytes: 200 * GiB };

describe('inMemoryCap', () => {
  it('is what a wasm32 memory holds beside the kernel on a big host without a cgroup limit', () => {
    expect(inMemoryCap(bigHost)).toEqual({ bytes: 4 * GiB - KERNEL_RESERVE_BYTES, limitedBy: 'wasm32' });
    expect(WASM32_MAX_BYTES).toBe(4 * GiB);
  });

  it('is half a cgroup limit below that', () => {
    expect(inMemoryCap({ ...bigHost, cgroupLimitBytes: 1 * GiB })).toEqual({ bytes: 512 * MiB, limitedBy: 'cgroup limit' });
  });

  it("is half the host's memory on a small host, and no more than is free", () => {
    expect(inMemoryCap({ cgroupLimitBytes: null, hostTotalBytes: 2 * GiB, hostAvailableBytes: 1.5 * GiB })).toEqual({
      bytes: 1 * GiB,
      limitedBy: 'host memory',
    });
    expect(inMemoryCap({ cgroupLimitBytes: null, hostTotalBytes: 16 * GiB, hostAvailableBytes: 300 * MiB })).toEqual({
      bytes: 300 * MiB,
      limitedBy: 'free memory',
    });
  });
});

describe('chooseRowHolding', () => {
  const cap = { bytes: 4 * GiB - KERNEL_RESERVE_BYTES, limitedBy: 'wasm32' } as const;

  it('holds rows in memory when they fit the budget and the cap (the budget counts rows × (4D + 1) bytes)', () => {
    expect(chooseRowHolding(1000, 10, 41_000, cap)).toEqual({ mode: 'memory', note: null });
  });

  it('pages rows above the budget without a note: that is what the budget is for', () => {
    expect(chooseRowHolding(1000, 10, 40_999, cap)).toEqual({ mode: 'paged', note: null });
  });

  it('pages rows the budget would hold but wasm32 cannot (a 5 GiB budget, 4.5 GiB of rows), and says so in one line', () => {
    const rows = 30_000_000;
    const D = 40; // 30 M × 161 bytes = 4.5 GiB
    const holding = chooseRowHolding(rows, D, 5 * GiB, cap);
    expect(holding.mode).toBe('paged');
    expect(holding.note).toMatch(
      /^the data takes \d+ MB in memory, more than this worker can hold \(3968 MB, set by the wasm32\): reading rows from the file instead$/,
    );
  });

  it('pages rows a cgroup limit cannot hold (a 1 GiB cgroup, 700 MB of rows)', () => {
    const holding = chooseRowHolding(1_000_000, 175, 1024 * MiB, inMemoryCap({ ...bigHost, cgroupLimitBytes: 1 * GiB }));
    expect(holding.mode).toBe('paged');
    expect(holding.note).toMatch(/set by the cgroup limit/);
  });

  it('counts the epoch order against the cap: rows that fit only without it are paged', () => {
    const tight = { bytes: 1000 * 41 + 3999, limitedBy: 'host memory' } as const;
    expect(chooseRowHolding(1000, 10, 1 << 30, tight).mode).toBe('paged');
    expect(chooseRowHolding(1000, 10, 1 << 30, { ...tight, bytes: 1000 * 45 }).mode).toBe('memory');
  });
});

describe('budgetCapNote', () => {
  it('names the budget and the cap when the budget is above it, and nothing otherwise', () => {
    const cap = { bytes: 3968 * MiB, limitedBy: 'wasm32' } as const;
    expect(budgetCapNote(5120 * MiB, cap)).toBe(
      '--memory-budget 5120 MB is more than this worker can hold in memory (3968 MB, set by the wasm32); larger data is read from the file',
    );
    expect(budgetCapNote(1024 * MiB, cap)).toBeNull();
  });
});

describe('maxLocalWorkers', () => {
  it('allows 4 local workers per CPU, one per 64 MB of memory, 256 in all, and always one', () => {
    expect(maxLocalWorkers(2, 24 * GiB)).toBe(8);
    expect(maxLocalWorkers(128, 1024 * GiB)).toBe(256);
    expect(maxLocalWorkers(16, 1 * GiB)).toBe(16);
    expect(maxLocalWorkers(1, 10 * MiB)).toBe(1);
  });
});
