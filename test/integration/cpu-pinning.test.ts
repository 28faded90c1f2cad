// dpt train pins its coordinator and local workers to CPUs (read back from /proc while it runs),
// and --no-pin leaves them where the OS put them.

import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planCpus } from '../../cli/cpu-pinning.js';
import { allowedCpus, hasTaskset, parseCpuList } from '../../shared/cpus.js';
import { killAll, startCli, temporaryDirectory } from '../helpers/cli.js';
import { generateData } from '../helpers/reference.js';

const directory = temporaryDirectory();
const dataPath = join(directory.path, 'data.csv');
writeFileSync(dataPath, generateData(400, 5, 3).csv);
const cpus = allowedCpus();
const canPin = cpus !== null && hasTaskset();

afterAll(() => {
  killAll();
  directory.remove();
});

function cpusOf(pid: number): number[] {
  const line = /^Cpus_allowed_list:\s*(.+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (line === null) throw new Error(`no Cpus_allowed_list for ${pid}`);
  return parseCpuList(line[1]!) ?? [];
}

/** PIDs whose parent is `pid`, from /proc/<pid>/stat (field 4). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // after "pid (comm) "
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // The process ended while the directory was read.
    }
  }
  return children.sort((a, b) => a - b);
}

/** The command-line arguments of process `pid`. */
function argumentsOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
}

async function affinitiesDuringRun(
  extra: string[],
): Promise<{ coordinator: number[]; workers: number[][]; polls: { cpus: string; poll: string | undefined }[]; stdout: string }> {
  const train = startCli(['train', '--data', dataPath, '--workers', '2', '--epochs', '100000', '--batch-size', '8', ...extra]);
  await train.waitForLine(/epoch 1\/100000/, 30_000);
  const workers = childrenOf(train.pid);
  const polls = workers.map((pid) => {
    const args = argumentsOf(pid);
    return { cpus: cpusOf(pid).join(','), poll: args[args.indexOf('--poll') + 1] };
  });
  const result = { coordinator: cpusOf(train.pid), workers: workers.map(cpusOf), polls, stdout: train.stdout() };
  process.kill(train.pid, 'SIGTERM');
  await train.exited();
  return result;
}

describe.skipIf(!canPin)('dpt train on Linux with taskset', () => {
  it('pins the coordinator and each local worker to the CPU of the plan', async () => {
    const plan = planCpus(cpus ?? [], 2);
    const run = await affinitiesDuringRun([]);
    expect(run.stdout).toContain(`pinned: coordinator on CPU ${plan.coordinator}, workers on CPUs ${plan.workers.join(', ')}`);
    expect(run.coordinator).toEqual([plan.coordinator]);
    expect(run.workers).toHaveLength(2);
    // Which worker started first is up to the OS; the set of CPUs is the plan's.
    expect(run.workers.map((set) => set.join(',')).sort()).toEqual(plan.workers.map(String).sort());
    // The worker on a CPU of its own polls between steps; the one beside the coordinator does not.
    for (const { cpus: workerCpus, poll } of run.polls) expect(poll, workerCpus).toBe(workerCpus === String(plan.coordinator) ? '0' : '2');
  });

  it('--no-pin leaves every process on all the CPUs it may use', async () => {
    const run = await affinitiesDuringRun(['--no-pin']);
    expect(run.stdout).not.toContain('pinned:');
    expect(run.coordinator).toEqual(cpus);
    expect(run.workers).toEqual([cpus, cpus]);
    expect(run.polls.map(({ poll }) => poll)).toEqual(['0', '0']);
  });
});
