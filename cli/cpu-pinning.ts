// Where `dpt train` runs its processes: the coordinator and its local workers are pinned to CPUs
// (Linux, with util-linux's taskset), as MPI binds ranks to cores. On a VM a wake-up across CPUs
// costs tens of µs, more than a small step's compute, and an unpinned scheduler moves processes
// around: with one worker, coordinator and worker share a CPU (they never compute at the same
// time); with more, workers spread over the CPUs and the coordinator shares the first one with
// one worker, so one of each step's sends wakes a process on its own CPU. A worker with several
// compute threads (--threads) gets that many CPUs; its helper threads pin themselves.

export interface CpuPlan {
  readonly coordinator: number;
  /** CPU of local worker i (its main thread). */
  readonly workers: readonly number[];
  /** CPUs of local worker i's compute threads beyond the main one (--threads). */
  readonly helpers: readonly (readonly number[])[];
}

/** Compute threads per local worker by default: the CPUs each worker gets, at least 1. */
export function defaultThreads(cpus: number, workers: number): number {
  return Math.max(1, Math.floor(cpus / workers));
}

/**
 * CPUs for the coordinator and `workers` local workers of `threads` compute threads each, from
 * the CPUs this process may use. Each worker takes `threads` consecutive CPUs (cyclically); with
 * one thread per worker the first worker starts on the second CPU, so that the coordinator shares
 * a CPU with the last worker rather than the first (W = 3 on 2 CPUs: 2 processes per CPU).
 */
export function planCpus(cpus: readonly number[], workers: number, threads = 1): CpuPlan {
  if (cpus.length === 0) throw new Error('planCpus needs at least one CPU');
  const at = (i: number): number => cpus[i % cpus.length]!; // i % length < length
  const shift = threads === 1 && workers > 1 ? 1 : 0;
  return {
    coordinator: at(0),
    workers: Array.from({ length: workers }, (_, i) => at(i * threads + shift)),
    helpers: Array.from({ length: workers }, (_, i) => Array.from({ length: threads - 1 }, (_, k) => at(i * threads + shift + k + 1))),
  };
}

/** Whether worker `i` of the plan has its CPU to itself (no coordinator, other worker or compute thread on it). */
export function hasOwnCpu(plan: CpuPlan, i: number): boolean {
  const cpu = plan.workers[i];
  const others = [plan.coordinator, ...plan.workers.filter((_, k) => k !== i), ...plan.helpers.flat()];
  return cpu !== undefined && !others.includes(cpu);
}
