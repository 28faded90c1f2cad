// Paged workers reading through a memory map (issue #15 item 3), as real processes: a cluster whose
// workers map the file gives the model and loss stream of workers reading it by positioned reads
// and of workers holding it in memory, bit for bit, under row and block shuffle (each worker's
// ready line says which way it read); a worker whose mapped file is cut short mid-run ends with a
// line naming the file, by exit code, not by a signal, and the run still ends with the right model.
// DPT_NATIVE=require: these runs fail where the addon is not built.

import { copyFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startHonestWorker } from '../helpers/fake-worker.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';
import { writeSeededDpt } from '../helpers/seeded-dpt.js';

const directory = temporaryDirectory();
const TOKEN = 'mapped-token';
afterEach(() => killAll());
afterAll(() => {
  killAll();
  directory.remove();
});

// Shuffled, standardized, a validation split, B dividing neither the rows nor the worker count.
const FLAGS = ['--data', 'data/breast_cancer.csv', '--epochs', '3', '--batch-size', '160', '--lr', '0.3', '--l2', '0.001', '--val-split', '0.1', '--seed', '7'];
const PAGED = { DPT_MEMORY_BUDGET: '0', DPT_NATIVE: 'require' };

/** A coordinator and two `dpt worker` processes with `env`: the model's hash, the loss stream and how each worker held its rows. */
async function cluster(name: string, extra: string[], env: Record<string, string>): Promise<{ hash: string; losses: number[]; holdings: string[] }> {
  const out = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const coordinator = startCli([
    'coordinator',
    ...FLAGS,
    ...extra,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--workers',
    '2',
    '--token',
    TOKEN,
    '--out',
    out,
    '--metrics',
    metrics,
  ]);
  const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/, 60_000);
  const workers = [0, 1].map(() => startCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--token', TOKEN], env));
  const holdings: string[] = [];
  for (const worker of workers) holdings.push((await worker.waitForLine(/ready \((memory|paged, mapped|paged, reads),/, 60_000))[1]!);
  expect((await coordinator.exited(120_000)).code, coordinator.stderr()).toBe(0);
  for (const worker of workers) expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
  return { hash: modelHash(out), losses: stepLosses(metrics), holdings };
}

describe('workers reading through a memory map', () => {
  for (const [name, extra] of [
    ['row shuffle', []],
    ['block shuffle', ['--shuffle', 'blocks', '--block-rows', '24']],
  ] as const) {
    it(`train the same bits as workers reading by positioned reads and as workers holding the rows (${name})`, { timeout: 240_000 }, async () => {
      const tag = name.replace(' ', '-');
      const memory = await cluster(`${tag}-memory`, [...extra], {});
      const mapped = await cluster(`${tag}-mapped`, [...extra], PAGED);
      const reads = await cluster(`${tag}-reads`, [...extra], { ...PAGED, DPT_PAGED_READS: 'reads' });
      expect(memory.holdings).toEqual(['memory', 'memory']);
      expect(mapped.holdings).toEqual(['paged, mapped', 'paged, mapped']);
      expect(reads.holdings).toEqual(['paged, reads', 'paged, reads']);
      expect(memory.losses.length).toBe(3 * Math.ceil(512 / 160));
      expect(mapped.hash).toBe(memory.hash);
      expect(mapped.losses).toEqual(memory.losses); // toEqual on numbers is exact (Object.is per value)
      expect(reads.hash).toBe(memory.hash);
      expect(reads.losses).toEqual(memory.losses);
    });
  }

  it('end a worker whose mapped file is cut short mid-run with a line naming the file (no signal), and the run still trains the right model', {
    timeout: 240_000,
  }, async () => {
    // 20,000 rows × 20 features: 2 content blocks, both touched by every worker's rows of step 0 (row shuffle).
    const good = writeSeededDpt(directory.path, 'good', 20_000, 20, 31, (j) => (j % 3) - 1);
    const copy = join(directory.path, 'copy.dpt');
    copyFileSync(good, copy);
    const train = ['--data', good, '--epochs', '4', '--batch-size', '2048', '--lr', '0.1', '--seed', '3'];
    const referenceOut = join(directory.path, 'reference.json');
    const reference = await runCli(['train', ...train, '--workers', '1', '--out', referenceOut], {}, 120_000);
    expect(reference.code, reference.stderr).toBe(0);

    const out = join(directory.path, 'cut.json');
    const coordinator = startCli([
      'coordinator',
      ...train,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '2',
      '--token',
      TOKEN,
      '--backup-factor',
      '0',
      '--step-timeout',
      '60000',
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/, 60_000);
    const url = `ws://127.0.0.1:${port}`;
    // An honest in-test worker holds step 3: the run stands there while the file is cut.
    const gate = startHonestWorker(url, TOKEN);
    const worker = startCli(['worker', '--connect', url, '--token', TOKEN, '--data', copy], PAGED);
    await worker.waitForLine(/ready \(paged, mapped,/, 60_000);
    const ended = coordinator.exited(120_000).then(({ code }): never => {
      throw new Error(`the run ended (${code}) before the fault\n${coordinator.stderr()}`);
    });
    await Promise.race([gate.holdAt(3), ended]);
    truncateSync(copy, 4096);
    gate.release();
    const end = await worker.exited(60_000);
    expect(end.signal, worker.stderr()).toBeNull();
    expect(end.code, worker.stderr()).toBe(2);
    expect(worker.stderr()).toMatch(
      /copy\.dpt: the file ends inside the (features|labels) \(truncated\?\): it is 4096 bytes now, \d+ when this worker mapped it/,
    );
    expect((await coordinator.exited(120_000)).code, coordinator.stderr()).toBe(0);
    expect(modelHash(out)).toBe(modelHash(referenceOut));
  });
});
