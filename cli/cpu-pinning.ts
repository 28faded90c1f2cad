// Where `dpt train` runs its processes: the coordinator and its local workers are pinned to CPUs
// (Linux, with util-linux's taskset), as MPI binds ranks to cores. On a VM a wake-up across CPUs
// costs tens of µs, more than a small step's compute, and an unpinned scheduler moves processes
// around: with one worker, coordinator and worker share a CPU (they never compute at the same
// time); with more, workers spread over the CPUs and the coordinator shares the first one with
// one worker, so one of each step's sends wakes a process on its own CPU.

import { spawnSync } from 'node:child_process';

export interface CpuPlan {
  readonly coordinator: number;
  /** CPU of local worker i. */
  readonly workers: readonly number[];
}

/** CPUs for the coordinator and `workers` local workers, from the CPUs this process may use. */
export function planCpus(cpus: readonly number[], workers: number): CpuPlan {
  if (cpus.length === 0) throw new Error('planCpus needs at least one CPU');
  const at = (i: number): number => cpus[i % cpus.length]!; // i % length < length
  return {
    coordinator: at(0),
    workers: Array.from({ length: workers }, (_, i) => (workers === 1 ? at(0) : at(i + 1))),
  };
}

/** Whether taskset can be run here. */
export function hasTaskset(): boolean {
  const probe = spawnSync('taskset', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/** Pins every thread of process `pid` to `cpus` (one CPU or a set); returns why it could not, or null. */
export function pinProcess(pid: number, cpus: number | readonly number[]): string | null {
  const list = typeof cpus === 'number' ? String(cpus) : cpus.join(',');
  const result = spawnSync('taskset', ['--all-tasks', '--cpu-list', '--pid', list, String(pid)], { encoding: 'utf8' });
  if (result.error !== undefined) return result.error.message;
  return result.status === 0 ? null : result.stderr.trim() || `taskset exited with ${result.status}`;
}

/** The command line that starts `command args` on `cpu`. */
export function pinnedCommand(cpu: number, command: string, args: readonly string[]): { command: string; args: string[] } {
  return { command: 'taskset', args: ['--cpu-list', String(cpu), command, ...args] };
}
