// The CPU plan of dpt train and the parsing of the kernel's CPU lists.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultThreads, hasOwnCpu, planCpus } from '../../cli/cpu-pinning.js';
import { sharesCpu } from '../../coordinator/server.js';
import { allowedCpus, formatCpuList, parseCpuList } from '../../shared/cpus.js';
import { temporaryDirectory } from '../helpers/cli.js';

describe('parseCpuList', () => {
  it('reads ranges and single CPUs', () => {
    expect(parseCpuList('0-1')).toEqual([0, 1]);
    expect(parseCpuList('0-3,8,10-11\n')).toEqual([0, 1, 2, 3, 8, 10, 11]);
    expect(parseCpuList('5')).toEqual([5]);
  });
  it('refuses what is not a CPU list', () => {
    for (const text of ['', 'a', '3-1', '1,,2', '0-', '-1', '0-99999999']) expect(parseCpuList(text), text).toBeNull();
    // A peer's list is bounded in total, not only per range: 40 ranges of 65,536 CPUs each are refused.
    expect(parseCpuList(Array.from({ length: 40 }, () => '0-65535').join(','))).toBeNull();
    expect(parseCpuList('0-65535')).toHaveLength(65_536);
  });
});

describe('formatCpuList', () => {
  it('writes ranges that parseCpuList reads back', () => {
    expect(formatCpuList([0, 1, 2, 5, 7, 8])).toEqual('0-2,5,7-8');
    expect(formatCpuList([3])).toEqual('3');
    expect(formatCpuList([])).toEqual('');
    const cpus = [0, 1, 2, 3, 9, 10, 63, 64, 65, 127];
    expect(parseCpuList(formatCpuList(cpus))).toEqual(cpus);
  });
});

describe('sharesCpu (the coordinator sends to workers on other CPUs first)', () => {
  it("compares a worker's CPU list with the coordinator's CPUs", () => {
    expect(sharesCpu('1', [0])).toBe(false);
    expect(sharesCpu('0', [0])).toBe(true);
    expect(sharesCpu('0-3', [2])).toBe(true);
    expect(sharesCpu('4-7', [0, 1, 2, 3])).toBe(false);
  });
  it('counts a worker as sharing when either side is unknown or the list is unreadable', () => {
    expect(sharesCpu('', [0])).toBe(true);
    expect(sharesCpu('1', null)).toBe(true);
    expect(sharesCpu('banana', [0])).toBe(true);
  });
});

describe('allowedCpus', () => {
  it('reads Cpus_allowed_list from a status file', () => {
    const directory = temporaryDirectory();
    try {
      const status = join(directory.path, 'status');
      writeFileSync(status, 'Name:\tnode\nCpus_allowed:\tf\nCpus_allowed_list:\t2-3,6\nMems_allowed_list:\t0\n');
      expect(allowedCpus(status)).toEqual([2, 3, 6]);
      writeFileSync(status, 'Name:\tnode\n');
      expect(allowedCpus(status)).toBeNull();
      expect(allowedCpus(join(directory.path, 'missing'))).toBeNull();
    } finally {
      directory.remove();
    }
  });
});

describe('planCpus', () => {
  it('puts a single worker beside the coordinator, its other compute threads on the other CPUs', () => {
    expect(planCpus([0, 1], 1)).toEqual({ coordinator: 0, workers: [0], helpers: [[]] });
    expect(planCpus([0, 1], 1, 2)).toEqual({ coordinator: 0, workers: [0], helpers: [[1]] });
    expect(planCpus([0, 1, 2, 3], 1, 4)).toEqual({ coordinator: 0, workers: [0], helpers: [[1, 2, 3]] });
  });
  it('spreads several workers, the coordinator sharing the first CPU with one of them', () => {
    expect(planCpus([0, 1], 2)).toEqual({ coordinator: 0, workers: [1, 0], helpers: [[], []] });
    expect(planCpus([0, 1], 3).workers).toEqual([1, 0, 1]);
    expect(planCpus([4, 5, 6, 7], 3).workers).toEqual([5, 6, 7]);
    expect(planCpus([2], 3).workers).toEqual([2, 2, 2]);
  });
  it('gives each worker of several threads its own consecutive CPUs', () => {
    expect(planCpus([0, 1, 2, 3, 4, 5, 6, 7], 2, 4)).toEqual({
      coordinator: 0,
      workers: [0, 4],
      helpers: [
        [1, 2, 3],
        [5, 6, 7],
      ],
    });
    expect(defaultThreads(8, 2)).toBe(4);
    expect(defaultThreads(2, 1)).toBe(2);
    expect(defaultThreads(2, 3)).toBe(1);
  });
  it('lets only a worker alone on its CPU poll between steps', () => {
    const two = planCpus([0, 1], 2);
    expect([0, 1].map((i) => hasOwnCpu(two, i))).toEqual([true, false]); // worker 1 is beside the coordinator
    const three = planCpus([0, 1], 3); // workers on CPUs 1, 0, 1
    expect([0, 1, 2].map((i) => hasOwnCpu(three, i))).toEqual([false, false, false]);
    expect(hasOwnCpu(planCpus([0, 1], 1, 2), 0)).toBe(false); // beside the coordinator, its helper elsewhere
    const wide = planCpus([0, 1, 2, 3], 2, 2); // worker 0 on 0 (+1), worker 1 on 2 (+3)
    expect([0, 1].map((i) => hasOwnCpu(wide, i))).toEqual([false, true]);
  });
  it('balances the processes: no CPU runs two more than another', () => {
    for (const cpus of [
      [0, 1],
      [0, 1, 2],
      [3, 9, 11, 12],
    ]) {
      for (let workers = 1; workers <= 9; workers++) {
        const plan = planCpus(cpus, workers);
        const load = new Map(cpus.map((cpu) => [cpu, 0]));
        for (const cpu of [plan.coordinator, ...plan.workers]) load.set(cpu, (load.get(cpu) ?? Number.NaN) + 1);
        const counts = [...load.values()];
        expect(counts.every(Number.isFinite)).toBe(true);
        expect(Math.max(...counts) - Math.min(...counts), `${cpus} × ${workers}`).toBeLessThanOrEqual(workers === 1 ? 2 : 1);
      }
    }
  });
});
