// Where `dpt train` runs its processes: the coordinator and its local workers are pinned to CPUs
// (Linux, with util-linux's taskset), as MPI binds ranks to cores. On a VM a wake-up across CPUs
// costs tens of µs, more than a small step's compute, and an unpinned scheduler moves processes
// around: with one worker, coordinator and worker share a CPU (they never compute at the same
// time); with more, workers spread over the CPUs and the coordinator shares the first one with
// one worker, so one of each step's sends wakes a process on its own CPU.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

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

/** Parses a kernel CPU list ("0-3,8,10-11") into CPU numbers; null when it is not one. */
export function parseCpuList(text: string): number[] | null {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (match === null) return null;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first || last - first > 65_536) return null;
    for (let cpu = first; cpu <= last; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The CPUs this process may run on (Linux), or null where that cannot be read. */
export function allowedCpus(statusPath = '/proc/self/status'): number[] | null {
  let status: string;
  try {
    status = readFileSync(statusPath, 'utf8');
  } catch {
    return null; // not Linux, or no /proc
  }
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
  return line === null ? null : parseCpuList(line[1]!);
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
