// The CPUs a process may run on (Linux's Cpus_allowed_list), read the same way by the CLI that
// pins processes, by workers that report their CPUs in the hello, and by the coordinator that
// sends to workers on other CPUs first; and pinning with util-linux's taskset, for the CLI's
// processes and a worker's compute threads.

import { spawnSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';

/** More CPUs than any machine has: a list naming more is not a CPU list (it may come from a peer). */
const MAX_CPUS = 65_536;

/** Parses a kernel CPU list ("0-3,8,10-11") into CPU numbers; null when it is not one. */
export function parseCpuList(text: string): number[] | null {
  const cpus: number[] = [];
  for (const part of text.trim().split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (match === null) return null;
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first || cpus.length + (last - first) >= MAX_CPUS) return null;
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

/** Writes CPU numbers as a kernel CPU list with ranges: [0, 1, 2, 5] → "0-2,5". */
export function formatCpuList(cpus: readonly number[]): string {
  const sorted = [...new Set(cpus)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const first = sorted[i]!;
    while (i + 1 < sorted.length && sorted[i + 1] === sorted[i]! + 1) i++;
    parts.push(first === sorted[i] ? String(first) : `${first}-${sorted[i]}`);
  }
  return parts.join(',');
}

/** Whether taskset can be run here. */
export function hasTaskset(): boolean {
  const probe = spawnSync('taskset', ['--version'], { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/** Pins every thread of process `pid` to `cpus` (one CPU or a set); returns why it could not, or null. */
export function pinProcess(pid: number, cpus: number | readonly number[]): string | null {
  return taskset(['--all-tasks', '--cpu-list', '--pid', cpuArgument(cpus), String(pid)]);
}

/** Pins the calling thread alone (its id from /proc/thread-self) to `cpus`; returns why it could not, or null. */
export function pinThisThread(cpus: number | readonly number[]): string | null {
  let tid: string;
  try {
    tid = readlinkSync('/proc/thread-self').split('/').at(-1) ?? ''; // "<pid>/task/<tid>"
  } catch {
    return 'no /proc/thread-self';
  }
  return taskset(['--cpu-list', '--pid', cpuArgument(cpus), tid]);
}

/** The command line that starts `command args` on `cpu`. */
export function pinnedCommand(cpu: number, command: string, args: readonly string[]): { command: string; args: string[] } {
  return { command: 'taskset', args: ['--cpu-list', String(cpu), command, ...args] };
}

function cpuArgument(cpus: number | readonly number[]): string {
  return typeof cpus === 'number' ? String(cpus) : cpus.join(',');
}

function taskset(args: readonly string[]): string | null {
  const result = spawnSync('taskset', args, { encoding: 'utf8' });
  if (result.error !== undefined) return result.error.message;
  return result.status === 0 ? null : result.stderr.trim() || `taskset exited with ${result.status}`;
}
