// How much data a worker may hold in memory (issue #10 item 17): its --memory-budget, capped by
// what a wasm32 memory can address (the kernel's rows live there) and by what the machine allows
// (the cgroup's memory limit, the host's RAM, the memory free now). Data above the cap is read
// from the file by offset (paged) instead of crashing the kernel or getting the worker OOM-killed.

import { readFileSync } from 'node:fs';
import { freemem, totalmem } from 'node:os';

/** A wasm32 memory: 65,536 pages of 64 KiB. */
export const WASM32_MAX_BYTES = 65_536 * 65_536;
/** What the kernel's memory holds besides the rows and the epoch order: weights, parts, scratch, staging (bytes). */
export const KERNEL_RESERVE_BYTES = 128 * 1024 * 1024;
/** A cgroup v1 limit at or above this means "no limit" (the kernel reports 2^63 rounded down to a page). */
const UNLIMITED_V1_BYTES = 2 ** 60;

export interface MachineMemory {
  /** The tightest memory limit of this process's cgroup and its ancestors, or null for none. */
  readonly cgroupLimitBytes: number | null;
  readonly hostTotalBytes: number;
  /** Free memory now (os.freemem: MemAvailable on Linux). */
  readonly hostAvailableBytes: number;
}

export interface MemoryCap {
  /** Row bytes (x, y and the epoch order) this worker may hold in memory at most. */
  readonly bytes: number;
  readonly limitedBy: 'wasm32' | 'cgroup limit' | 'host memory' | 'free memory';
}

/**
 * The in-memory cap: the rows, labels and epoch order must fit a wasm32 memory beside the
 * kernel's other buffers, and take at most half of the memory this process may use (the cgroup
 * limit, else the host's RAM: the rest is for Node.js, the page cache and the other processes)
 * and no more than is free now.
 */
export function inMemoryCap(machine: MachineMemory): MemoryCap {
  const candidates: MemoryCap[] = [{ bytes: WASM32_MAX_BYTES - KERNEL_RESERVE_BYTES, limitedBy: 'wasm32' }];
  if (machine.cgroupLimitBytes !== null) candidates.push({ bytes: Math.floor(machine.cgroupLimitBytes / 2), limitedBy: 'cgroup limit' });
  candidates.push({ bytes: Math.floor(machine.hostTotalBytes / 2), limitedBy: 'host memory' });
  candidates.push({ bytes: machine.hostAvailableBytes, limitedBy: 'free memory' });
  let cap = candidates[0]!; // the wasm32 entry is always there
  for (const candidate of candidates) if (candidate.bytes < cap.bytes) cap = candidate;
  return { bytes: Math.max(0, cap.bytes), limitedBy: cap.limitedBy };
}

export interface RowHolding {
  readonly mode: 'memory' | 'paged';
  /** Set when the budget would have held the data but the cap does not: the one line saying so. */
  readonly note: string | null;
}

/**
 * Memory when the rows fit both the budget and the cap, else paged (with a note when only the cap
 * said no). The budget counts the rows as stored (float32 features and a label byte per row); the
 * cap also counts the uint32 epoch order that compute threads keep beside them.
 */
export function chooseRowHolding(rows: number, features: number, budgetBytes: number, cap: MemoryCap): RowHolding {
  const rowBytes = rows * (4 * features + 1);
  if (rowBytes > budgetBytes) return { mode: 'paged', note: null };
  const heldBytes = rowBytes + 4 * rows;
  if (heldBytes <= cap.bytes) return { mode: 'memory', note: null };
  return {
    mode: 'paged',
    note: `the data takes ${megabytes(heldBytes)} MB in memory, more than this worker can hold (${megabytes(cap.bytes)} MB, set by the ${cap.limitedBy}): reading rows from the file instead`,
  };
}

/** The line a worker prints at start when its --memory-budget is above the cap, or null. */
export function budgetCapNote(budgetBytes: number, cap: MemoryCap): string | null {
  if (budgetBytes <= cap.bytes) return null;
  return `--memory-budget ${megabytes(budgetBytes)} MB is more than this worker can hold in memory (${megabytes(cap.bytes)} MB, set by the ${cap.limitedBy}); larger data is read from the file`;
}

function megabytes(bytes: number): number {
  return Math.floor(bytes / (1024 * 1024));
}

/** This machine's memory facts (Linux cgroup v2 or v1; elsewhere no cgroup limit). */
export function readMachineMemory(): MachineMemory {
  return { cgroupLimitBytes: cgroupMemoryLimit(), hostTotalBytes: totalmem(), hostAvailableBytes: freemem() };
}

/**
 * The tightest memory limit over this process's cgroup and its ancestors: v2's memory.max, v1's
 * memory.limit_in_bytes. In a container the path in /proc/self/cgroup may not exist under the
 * mount; directories that do not exist are skipped, down to the mount's root.
 */
export function cgroupMemoryLimit(): number | null {
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return null; // not Linux (or no procfs): no cgroup to honour
  }
  let limit: number | null = null;
  const tighten = (value: number | null): void => {
    if (value !== null && (limit === null || value < limit)) limit = value;
  };
  for (const line of lines) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined || controllers === undefined) continue;
    if (controllers === '') {
      for (const dir of ancestors('/sys/fs/cgroup', path)) tighten(readLimit(`${dir}/memory.max`));
      for (const dir of ancestors('/sys/fs/cgroup/unified', path)) tighten(readLimit(`${dir}/memory.max`));
    } else if (controllers.split(',').includes('memory')) {
      for (const dir of ancestors('/sys/fs/cgroup/memory', path)) tighten(readLimit(`${dir}/memory.limit_in_bytes`));
    }
  }
  return limit;
}

/** root + path, then each parent up to root itself. */
function ancestors(root: string, path: string): string[] {
  const parts = path.split('/').filter((part) => part !== '');
  const dirs: string[] = [];
  for (let n = parts.length; n >= 0; n--) dirs.push([root, ...parts.slice(0, n)].join('/'));
  return dirs;
}

/** A limit file's value in bytes; null for "max", an unlimited v1 value, or a file that is not there. */
function readLimit(file: string): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return null; // this level of the hierarchy is not visible here
  }
  const value = Number(text);
  if (text === 'max' || !Number.isFinite(value) || value <= 0 || value >= UNLIMITED_V1_BYTES) return null;
  return value;
}
