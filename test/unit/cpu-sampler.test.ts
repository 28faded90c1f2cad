// The warm-up bench's CPU sampler (bench/cpu-sampler.ts): windows of CPU time between two
// instants, and a real run that counts a child's main-thread work and passes its exit code on.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CpuSample, cpuBetween, type SamplerRecord } from '../../bench/cpu-sampler.js';
import { REPO, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());

describe('cpuBetween', () => {
  it('takes the samples nearest before each instant', () => {
    const samples: CpuSample[] = [
      [1000, 0, 0],
      [1005, 10, 0],
      [1010, 20, 10],
      [1015, 40, 10],
    ];
    expect(cpuBetween(samples, 1006, 1015)).toEqual({ mainMs: 30, otherMs: 10 });
    expect(cpuBetween(samples, 999, 1004)).toEqual({ mainMs: 0, otherMs: 0 });
    expect(cpuBetween(samples, 1010, 2000)).toEqual({ mainMs: 20, otherMs: 0 });
  });
});

describe.runIf(process.platform === 'linux')('cpu-sampler', () => {
  it("counts a child's main-thread CPU and exits with its code", () => {
    const samplesPath = join(directory.path, 'samples.json');
    // ~10⁸ additions: tens of ms of CPU on any machine, then exit code 3.
    const busy = 'let s = 0; for (let i = 0; i < 1e8; i++) s += i; process.exitCode = s > 0 ? 3 : 4;';
    const run = spawnSync(process.execPath, [join(REPO, 'dist', 'bench', 'cpu-sampler.js'), samplesPath, process.execPath, '-e', busy], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, run.stderr).toBe(3);
    const { spawnedMs, exitedMs, samples } = JSON.parse(readFileSync(samplesPath, 'utf8')) as SamplerRecord;
    expect(exitedMs).toBeGreaterThanOrEqual(spawnedMs);
    expect(samples.length).toBeGreaterThan(0);
    expect(samples[0]![0]).toBeGreaterThanOrEqual(spawnedMs);
    const last = samples.at(-1)!;
    expect(last[1]).toBeGreaterThan(0);
    // Times only grow.
    for (let i = 1; i < samples.length; i++) {
      expect(samples[i]![0]).toBeGreaterThanOrEqual(samples[i - 1]![0]);
      expect(samples[i]![1]).toBeGreaterThanOrEqual(samples[i - 1]![1]);
    }
  }, 60_000);
});
