// `dpt train`'s local workers (issue #10 items 15-17): --workers is bounded before anything is
// spawned; SIGTERM during start-up stops every worker spawned so far before train exits; a
// worker that dies before joining is reported at once (with its last stderr line) and the run
// starts with the others (--min-workers), or fails at once when too few can join; and
// --memory-budget is accepted by train, passed to the workers and capped at what wasm32 holds.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
const data = join(directory.path, 'rows.dpt');
const SMALL = ['--data', 'data/breast_cancer.csv', '--epochs', '2', '--batch-size', '64'];

beforeAll(async () => {
  // 400,000 rows × 20 features (33 MB): every local worker reads it all before it joins.
  const made = await runCli(['data', 'generate', '--rows', '400000', '--features', '20', '--out', data, '--quiet'], {}, 120_000);
  expect(made.code, made.stderr).toBe(0);
}, 180_000);

afterAll(() => {
  killAll();
  directory.remove();
});

/**
 * PIDs of the local workers of the `dpt train` with PID `trainPid`, found by their command line
 * (each names the train's Unix socket, dpt-<train pid>-…): found even once train is gone.
 */
function localWorkerPids(trainPid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    if (cmdline.includes(`/dpt-${trainPid}-`) && cmdline.includes('worker')) pids.push(Number(entry));
  }
  return pids;
}

/** Resolves with the local workers' PIDs once there is at least one (polls /proc, bounded). */
async function firstLocalWorkers(trainPid: number, timeoutMs = 30_000): Promise<number[]> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const pids = localWorkerPids(trainPid);
    if (pids.length > 0) return pids;
    if (Date.now() > giveUpAt) throw new Error(`no local worker of dpt train ${trainPid} appeared within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('dpt train --workers', () => {
  it('refuses more local workers than the machine can hold, naming the flag and the bound, before starting anything', async () => {
    const result = await runCli(['train', ...SMALL, '--workers', '100000'], {}, 30_000);
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    const bound = /^dpt: --workers 100000: at most (\d+) local workers on this machine/.exec(lines[0] ?? '');
    expect(bound, result.stderr).not.toBeNull();
    expect(result.stdout).not.toMatch(/starting/);
    const max = Number(bound![1]); // matched just above
    expect(max).toBeGreaterThanOrEqual(1);
    expect(max).toBeLessThanOrEqual(256);
    // The bound is the bound: one more is refused too.
    const over = await runCli(['train', ...SMALL, '--workers', String(max + 1)], {}, 30_000);
    expect(over.code).toBe(2);
    expect(over.stderr).toMatch(new RegExp(`--workers ${max + 1}: at most ${max} local workers`));
    expect(over.stdout).not.toMatch(/starting/);
  }, 60_000);

  it('refuses --min-workers above --workers', async () => {
    const result = await runCli(['train', ...SMALL, '--workers', '2', '--min-workers', '3'], {}, 30_000);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--min-workers 3 is more than --workers 2/);
  }, 60_000);

  it('stops every local worker spawned so far when SIGTERM comes during start-up, before it exits', async () => {
    const refused = await runCli(['train', ...SMALL, '--workers', '100000'], {}, 30_000);
    const max = Number(/at most (\d+) local workers/.exec(refused.stderr)?.[1] ?? '1');
    const workers = Math.min(max, 8);
    const train = startCli(['train', '--data', data, '--epochs', '1', '--workers', String(workers), '--join-timeout', '600000', '--memory-budget', '1024']);
    await train.waitForLine(/starting \d+ local worker/, 60_000);
    const seen = await firstLocalWorkers(train.pid);
    // One worker is frozen (as a worker stuck in the kernel or under a debugger would be): a
    // SIGTERM alone never ends it, so train must escalate.
    process.kill(seen[0]!, 'SIGSTOP'); // seen has at least one PID
    process.kill(train.pid, 'SIGTERM');
    const { code } = await train.exited(30_000);
    const leftover = localWorkerPids(train.pid);
    for (const pid of leftover) process.kill(pid, 'SIGKILL'); // what a failing run left behind
    expect(code).toBe(130);
    expect(train.stderr()).toMatch(/stopped by SIGTERM/);
    // The signal came during start-up: no step was trained.
    expect(train.stdout()).not.toMatch(/trained \d+ steps/);
    expect(seen.length).toBeGreaterThan(0);
    // Gone when train has exited, not some time later: the frozen one too.
    expect(leftover).toEqual([]);
  }, 120_000);
});

describe('a local worker that dies before joining', () => {
  it('is reported at once and the run starts with the others', async () => {
    const train = startCli(['train', ...SMALL, '--workers', '3', '--join-timeout', '600000']);
    const [victim] = await firstLocalWorkers(train.pid);
    // Killed as the OOM killer would: no last words.
    process.kill(victim!, 'SIGKILL');
    const { code } = await train.exited(120_000);
    expect(code, train.stderr()).toBe(0);
    expect(train.stderr()).toMatch(
      new RegExp(`local worker \\d of 3 \\(pid ${victim}\\) was killed by SIGKILL before training started; it wrote nothing to stderr`),
    );
    expect(train.stdout()).toMatch(/trained \d+ steps/);
  }, 180_000);

  it('when every worker dies, fails at once with their last stderr line, not after --join-timeout', async () => {
    // A stale setting in the environment the local workers inherit (a CA file that is not there):
    // each refuses it and exits 2.
    const train = startCli(['train', ...SMALL, '--workers', '2', '--join-timeout', '600000'], { DPT_CA: join(directory.path, 'no-such-ca.pem') });
    const { code } = await train.exited(60_000);
    expect(code).toBe(1);
    const stderr = train.stderr();
    expect(stderr).toMatch(
      /local worker 1 of 2 \(pid \d+\) exited with code 2 before training started; its last line: dpt: --ca .*no-such-ca\.pem: cannot read it/,
    );
    expect(stderr).toMatch(
      /local worker 2 of 2 \(pid \d+\) exited with code 2 before training started; its last line: dpt: --ca .*no-such-ca\.pem: cannot read it/,
    );
    expect(stderr).toMatch(/^dpt: 2 of 2 workers exited before joining; fewer than the 1 needed \(--min-workers\) can join \(DPT_NO_WORKERS\)$/m);
  }, 120_000);
});

describe('dpt train --memory-budget', () => {
  it('is accepted, passed to the local workers, and capped at what a wasm32 memory holds', async () => {
    const result = await runCli(['train', ...SMALL, '--workers', '1', '--memory-budget', '5120'], {}, 120_000);
    expect(result.code, result.stderr).toBe(0);
    const note = /--memory-budget 5120 MB is more than this worker can hold in memory \((\d+) MB, set by the ([a-z0-9 ]+)\)/.exec(result.stderr);
    expect(note, result.stderr).not.toBeNull();
    expect(Number(note![1])).toBeLessThan(4096); // matched just above
    expect(result.stdout).toMatch(/trained \d+ steps/);
  }, 180_000);
});
