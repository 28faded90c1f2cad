// Start-up benchmark (issue #11 item 5): the time from starting a cluster to "N workers joined",
// and the CPU each worker process spent until then (user + system, from /proc: what
// oversubscription distorts least). Two shapes: `dpt coordinator --workers N` with N `dpt worker`
// processes started at once, and `dpt train --workers N` (which spawns its own). Benchmarks only.
//
//   node dist/bench/startup.js [--w 1,4,16,32] [--trials 3] [--data file.dpt|file.csv] [--train]

import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatNumber, formatTable, median, parseGridArgs, REPO } from './harness.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;
const RUN_LIMIT_MS = 300_000;

interface Sample {
  /** From the coordinator's "listening" line to the Nth "joined" line. */
  readonly joinMs: number;
  /** Median CPU seconds of one worker process from its start to the Nth join. */
  readonly workerCpuS: number;
}

/** User + system CPU seconds of process `pid` so far, or null once it is gone. */
function cpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime: fields 14 and 15 of stat
  } catch {
    return null;
  }
}

/** PIDs of the local workers of `dpt train` with PID `trainPid` (their command line names its socket). */
function localWorkerPids(trainPid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(`/dpt-${trainPid}-`) && cmdline.includes('worker')) pids.push(Number(entry));
    } catch {
      // exited while we looked
    }
  }
  return pids;
}

function stop(children: readonly ChildProcess[]): Promise<void> {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const gone = Promise.all(children.map((child) => (child.exitCode !== null || child.signalCode !== null ? null : new Promise((r) => child.once('exit', r)))));
  const late = new Promise<void>((resolve) =>
    setTimeout(() => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      resolve();
    }, 5000).unref(),
  );
  return Promise.race([gone.then(() => undefined), late]);
}

/** One start-up: resolves once N workers joined (or rejects after RUN_LIMIT_MS). */
function measure(mode: 'coordinator' | 'train', W: number, data: string): Promise<Sample> {
  const common = ['--data', data, '--epochs', '1', '--batch-size', '1024'];
  const args =
    mode === 'train'
      ? [CLI, 'train', '--workers', String(W), ...common]
      : [CLI, 'coordinator', '--host', '127.0.0.1', '--port', '0', '--workers', String(W), ...common];
  const coordinator = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const children: ChildProcess[] = [coordinator];
  return new Promise<Sample>((resolve, reject) => {
    let listenedAt = 0;
    let joined = 0;
    let text = '';
    const limit = setTimeout(() => {
      void stop(children).then(() => reject(new Error(`${mode} W=${W}: ${joined} of ${W} joined within ${RUN_LIMIT_MS} ms`)));
    }, RUN_LIMIT_MS);
    const onLine = (line: string): void => {
      const url = /listening on (ws:\/\/\S+)/.exec(line);
      if ((url !== null || /listening on port/.test(line)) && listenedAt === 0) {
        listenedAt = performance.now();
        if (url !== null) {
          for (let i = 0; i < W; i++) {
            children.push(spawn(process.execPath, [CLI, 'worker', '--connect', url[1]!, '--quiet'], { stdio: 'ignore' })); // group 1 matched
          }
        }
      }
      if (/worker \d+(?: \([^)]*\))? joined/.test(line) && ++joined === W) {
        const joinMs = performance.now() - listenedAt;
        const pids = mode === 'train' ? localWorkerPids(coordinator.pid ?? -1) : children.slice(1).map((child) => child.pid ?? -1);
        const cpus = pids.map(cpuSeconds).filter((cpu): cpu is number => cpu !== null);
        clearTimeout(limit);
        void stop(children).then(() => resolve({ joinMs, workerCpuS: cpus.length === 0 ? Number.NaN : median(cpus) }));
      }
    };
    const read = (chunk: Buffer): void => {
      text += chunk.toString();
      const lines = text.split('\n');
      text = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    };
    coordinator.stdout.on('data', read);
    coordinator.stderr.on('data', read);
    // A refused run (e.g. dpt train beyond 4 local workers per CPU) ends before anyone joins.
    coordinator.once('exit', (code) => {
      if (joined >= W) return;
      clearTimeout(limit);
      void stop(children).then(() => reject(new Error(`${mode} W=${W} exited with code ${code} after ${joined} joined: ${text.trim().slice(0, 300)}`)));
    });
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const dataIndex = argv.indexOf('--data');
  const data = dataIndex >= 0 ? (argv.splice(dataIndex, 2)[1] ?? '') : join(REPO, 'data', 'breast_cancer.csv');
  const args = parseGridArgs(argv, { D: [1], B: [1], W: [1, 4, 16, 32] });
  const trials = Number(args.values.get('trials') ?? '1');
  const modes: ('coordinator' | 'train')[] = args.flags.has('train') ? ['coordinator', 'train'] : ['coordinator'];
  const rows: string[][] = [];
  for (const mode of modes) {
    for (const W of args.W) {
      const samples: Sample[] = [];
      for (let t = 0; t < trials; t++) {
        try {
          samples.push(await measure(mode, W, data));
        } catch (error) {
          process.stderr.write(`${(error as Error).message}\n`); // e.g. dpt train refuses more local workers than this machine holds
          break;
        }
      }
      if (samples.length === 0) continue;
      const joinMs = median(samples.map((s) => s.joinMs));
      rows.push([`dpt ${mode}`, String(W), formatNumber(joinMs), formatNumber(joinMs / W), formatNumber(median(samples.map((s) => s.workerCpuS)) * 1000)]);
    }
  }
  process.stdout.write(`${formatTable(['command', 'W', 'listening → all joined (ms)', 'per worker (ms)', 'CPU per worker (ms)'], rows)}\n`);
}

await main();
