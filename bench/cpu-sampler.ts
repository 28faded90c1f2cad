// Runs a command and samples the CPU time of its process and its direct children every few ms
// from /proc (Linux), split into main threads and other threads (V8's helper threads: optimizing
// compiler, GC). CPU time, unlike a wall rate, hardly moves with the machine's load, so the
// warm-up bench (bench/warmup.ts) can say what a window of steps cost even on a shared VM.
//
// `node dist/bench/cpu-sampler.js <samples.json> <command> [args...]`: exits with the command's
// exit code and writes a SamplerRecord to samples.json (the command's own start and exit times,
// so a caller's wall time leaves the sampler's start-up out).

import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const SAMPLE_INTERVAL_MS = 5;
/** Linux's USER_HZ: /proc reports CPU times in 1/100 s on every architecture Node supports. */
const MS_PER_CLOCK_TICK = 10;

/** One sample: when, and the CPU time (ms) of the main threads and of the other threads so far. */
export type CpuSample = [epochMs: number, mainMs: number, otherMs: number];

export interface SamplerRecord {
  /** Epoch ms just before the command was spawned, and when its exit was seen. */
  readonly spawnedMs: number;
  readonly exitedMs: number;
  readonly samples: CpuSample[];
}

/** user + system CPU ms of /proc/<pid>/task/<tid>/stat, or null once the thread is gone. */
function threadCpuMs(pid: number, tid: string): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * MS_PER_CLOCK_TICK;
  } catch {
    return null;
  }
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Samples `rootPid` and its children until the returned stop is called; a thread's last reading is kept after it ends. */
function sampleTree(rootPid: number, samples: CpuSample[]): () => void {
  const lastMs = new Map<string, { isMain: boolean; ms: number }>();
  const timer = setInterval(() => {
    for (const pid of [rootPid, ...childrenOf(rootPid)]) {
      let tids: string[] = [];
      try {
        tids = readdirSync(`/proc/${pid}/task`);
      } catch {
        continue;
      }
      for (const tid of tids) {
        const ms = threadCpuMs(pid, tid);
        if (ms !== null) lastMs.set(`${pid}/${tid}`, { isMain: tid === String(pid), ms });
      }
    }
    let mainMs = 0;
    let otherMs = 0;
    for (const { isMain, ms } of lastMs.values()) {
      if (isMain) mainMs += ms;
      else otherMs += ms;
    }
    samples.push([Date.now(), mainMs, otherMs]);
  }, SAMPLE_INTERVAL_MS);
  return () => clearInterval(timer);
}

/** CPU ms (main, other) used between epoch ms `fromMs` and `toMs`, from the samples nearest before each. */
export function cpuBetween(samples: readonly CpuSample[], fromMs: number, toMs: number): { mainMs: number; otherMs: number } {
  const at = (timeMs: number): CpuSample => {
    let found = samples[0]!;
    for (const sample of samples) {
      if (sample[0] > timeMs) break;
      found = sample;
    }
    return found;
  };
  const from = at(fromMs);
  const to = at(toMs);
  return { mainMs: to[1] - from[1], otherMs: to[2] - from[2] };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [samplesPath, command, ...args] = process.argv.slice(2);
  if (samplesPath === undefined || command === undefined) throw new Error('usage: cpu-sampler <samples.json> <command> [args...]');
  const spawnedMs = Date.now();
  const child = spawn(command, args, { stdio: 'inherit' });
  const samples: CpuSample[] = [];
  const stop = sampleTree(child.pid!, samples);
  child.on('exit', (code, signal) => {
    const exitedMs = Date.now();
    stop();
    const record: SamplerRecord = { spawnedMs, exitedMs, samples };
    writeFileSync(samplesPath, JSON.stringify(record));
    process.exit(code ?? (signal === null ? 1 : 128));
  });
}
