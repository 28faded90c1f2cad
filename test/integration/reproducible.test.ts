// The same bits on any cluster (DESIGN.md invariant 6): the model and the loss stream do not
// depend on the number of workers, the arrival order of parts, or the faults on the way (each
// fault is injected at a step an in-test worker observes, and asserted to have happened).

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliProcess, killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startHonestWorker } from '../helpers/fake-worker.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

// Shuffled, standardized, with a validation split, and a batch size that divides neither the
// rows nor most worker counts: every path of the schedule is on. B = 160 gives the default
// floor(160 / 32) = 5 chunks a batch: a reduction tree padded from 5 to 8 leaves.
const FLAGS = ['--data', 'data/breast_cancer.csv', '--epochs', '3', '--batch-size', '160', '--lr', '0.3', '--l2', '0.001', '--val-split', '0.1', '--seed', '7'];

async function train(name: string, workers: number, extra: string[] = [], env: Record<string, string> = {}): Promise<{ hash: string; losses: number[] }> {
  const out = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const result = await runCli(['train', ...FLAGS, '--workers', String(workers), '--out', out, '--metrics', metrics, ...extra], env, 120_000);
  expect(result.code, result.stderr).toBe(0);
  return { hash: modelHash(out), losses: stepLosses(metrics) };
}

describe('a reproducible run', () => {
  it('gives bit-identical weights and loss streams with 1, 2, 3, 5 and 8 workers', async () => {
    const runs = [];
    for (const workers of [1, 2, 3, 5, 8]) runs.push(await train(`w${workers}`, workers));
    const [first, ...others] = runs;
    if (first === undefined) throw new Error('no run');
    expect(first.losses).toHaveLength(3 * Math.ceil(512 / 160));
    for (const run of others) {
      expect(run.hash).toBe(first.hash);
      expect(run.losses).toEqual(first.losses); // toEqual on numbers is exact (Object.is per value)
    }
  });

  it('is the same when workers read their rows from the file (paged) and with the TypeScript kernel closely', async () => {
    const inMemory = await train('memory', 2);
    // A budget of 0 MB makes every worker read each chunk's rows from the file.
    const paged = await train('paged', 2, [], { DPT_MEMORY_BUDGET: '0' });
    expect(paged.hash).toBe(inMemory.hash);
    expect(paged.losses).toEqual(inMemory.losses);
    // A block shuffle too: paged reads are merged into runs and read ahead (issue #15 item 3),
    // which must change only the reads, never the rows a kernel sees.
    const blocks = ['--shuffle', 'blocks', '--block-rows', '24'];
    const blocksInMemory = await train('blocks-memory', 2, blocks);
    const blocksPaged = await train('blocks-paged', 2, blocks, { DPT_MEMORY_BUDGET: '0' });
    expect(blocksInMemory.hash).not.toBe(inMemory.hash);
    expect(blocksPaged.hash).toBe(blocksInMemory.hash);
    expect(blocksPaged.losses).toEqual(blocksInMemory.losses);
    const js = await train('js', 2, ['--kernel', 'js']);
    expect(js.losses).toHaveLength(inMemory.losses.length);
    for (const [i, loss] of inMemory.losses.entries()) expect(Math.abs(loss - (js.losses[i] as number))).toBeLessThan(1e-9);
  });

  it('changes when the data order changes (the hash is not blind)', async () => {
    const base = await train('seed7', 2);
    const other = await train('seed8', 2, ['--seed', '8']);
    expect(other.hash).not.toBe(base.hash);
  });

  it('is the same with a worker killed or frozen mid-run', async () => {
    const reference = await train('fault-free', 3, ['--epochs', '60']);
    for (const fault of ['SIGKILL', 'SIGSTOP'] as const) {
      const out = join(directory.path, `fault-${fault}.json`);
      const metrics = join(directory.path, `fault-${fault}.jsonl`);
      const token = 'reproducible';
      // Backups off: a frozen worker's chunks wait for --step-timeout, then are recomputed.
      const coordinator = startCli([
        'coordinator',
        ...FLAGS,
        '--epochs',
        '60',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--workers',
        '4',
        '--token',
        token,
        '--step-timeout',
        '2000',
        '--backup-factor',
        '0',
        '--out',
        out,
        '--metrics',
        metrics,
      ]);
      const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
      const url = `ws://127.0.0.1:${port}`;
      // An honest in-test worker holds step 100 (of 240): the fault lands while the run stands there.
      const gate = startHonestWorker(url, token);
      const workers = [0, 1, 2].map(() => startCli(['worker', '--connect', url, '--token', token]));
      const ended = coordinator.exited(120_000).then(({ code }): never => {
        throw new Error(`the run ended (${code}) before the fault\n${coordinator.stderr()}`);
      });
      await Promise.race([gate.holdAt(100), ended]);
      const victim = workers[0] as CliProcess;
      process.kill(victim.pid, fault);
      gate.release();
      // The fault happened: the coordinator lost the killed worker, or dropped the frozen one.
      const lost = fault === 'SIGKILL' ? /worker \d+(?: \([^)]*\))? left: disconnected/ : /worker \d+(?: \([^)]*\))? left: no part for step \d+ within 2000 ms/;
      await Promise.race([coordinator.waitForLine(lost, 60_000), ended]);
      expect((await coordinator.exited(120_000)).code, coordinator.stderr()).toBe(0);
      if (fault === 'SIGSTOP') expect(coordinator.stderr()).toMatch(/recomputing \d+ chunk\(s\)/);
      expect(modelHash(out)).toBe(reference.hash);
      expect(stepLosses(metrics)).toEqual(reference.losses);
    }
  });

  it('is the same with --no-reproducible, which is kept for compatibility (every run sums along the tree)', { timeout: 120_000 }, async () => {
    const exact = await train('exact', 3);
    const merged = await train('merged', 3, ['--no-reproducible']);
    expect(merged.hash).toBe(exact.hash);
    expect(merged.losses).toEqual(exact.losses);
  });
});
