// Start-up (issue #11 item 5): `dpt coordinator --min-workers` starts without the last stragglers
// and trains the bits of one worker; --min-workers above --workers is refused, and without it every
// worker is needed; and a CSV is hashed once per host: the processes of a second run, and the workers
// of the first, find the converted copy through the cache index without reading the CSV.

import { statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { modelHash } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
const data = join(directory.path, 'rows.dpt');
const csv = join(directory.path, 'rows.csv');
const TOKEN = 'startup-test-token';
const TRAIN = ['--epochs', '40', '--batch-size', '256', '--lr', '0.2', '--seed', '5', '--token', TOKEN];

beforeAll(async () => {
  const made = await runCli(['data', 'generate', '--rows', '6000', '--features', '12', '--seed', '9', '--out', data, '--quiet'], {}, 120_000);
  expect(made.code, made.stderr).toBe(0);
  // 9.5 MB: the cache announces the hashing of a CSV from 8 MiB on, which is what this test watches.
  const madeCsv = await runCli(['data', 'generate', '--rows', '45000', '--features', '20', '--seed', '3', '--out', csv, '--quiet'], {}, 120_000);
  expect(madeCsv.code, madeCsv.stderr).toBe(0);
  expect(statSync(csv).size).toBeGreaterThan(8 * 1024 * 1024);
  // Written an hour ago as far as the cache can tell: not "racily" new, so it may be indexed.
  const hourAgoS = Date.now() / 1000 - 3600;
  utimesSync(csv, hourAgoS, hourAgoS);
}, 180_000);

afterAll(() => {
  killAll();
  directory.remove();
});

/** Starts `dpt coordinator` with `flags` and resolves with it and its URL once it listens. */
async function startCoordinator(flags: string[], env: Record<string, string> = {}): Promise<{ coordinator: CliProcess; url: string }> {
  const coordinator = startCli(['coordinator', '--host', '127.0.0.1', '--port', '0', ...flags], env);
  const match = await coordinator.waitForLine(/listening on (ws:\/\/\S+)/, 60_000);
  return { coordinator, url: match[1]! }; // the pattern has one group
}

function startWorker(url: string, env: Record<string, string> = {}): CliProcess {
  return startCli(['worker', '--connect', url, '--token', TOKEN], env);
}

describe('dpt coordinator --min-workers', () => {
  it('refuses --min-workers above --workers before reading the data', async () => {
    const result = await runCli(['coordinator', '--data', data, '--port', '0', '--workers', '2', '--min-workers', '3'], {}, 30_000);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe('dpt: --min-workers 3 is more than --workers 2 (DPT_CONFIG)');
    expect(result.stdout).not.toMatch(/listening/);
  }, 60_000);

  it('starts at the join timeout with 2 of 3 workers and trains the bits of 1 worker', async () => {
    const single = join(directory.path, 'single.json');
    const { coordinator: one, url: oneUrl } = await startCoordinator(['--data', data, '--workers', '1', '--out', single, ...TRAIN]);
    startWorker(oneUrl);
    expect((await one.exited(180_000)).code, one.stderr()).toBe(0);

    const partial = join(directory.path, 'partial.json');
    const { coordinator, url } = await startCoordinator([
      '--data',
      data,
      '--workers',
      '3',
      '--min-workers',
      '2',
      '--join-timeout',
      '3000',
      '--out',
      partial,
      ...TRAIN,
    ]);
    startWorker(url);
    startWorker(url);
    await coordinator.waitForCount(/worker \d+(?: \([^)]*\))? joined/, 2, 60_000);
    // The run starts without the third worker once the join timeout has passed.
    await coordinator.waitForLine(/starting with 2 of 3 workers: the others did not join within 3000 ms/, 60_000);
    expect((await coordinator.exited(180_000)).code, coordinator.stderr()).toBe(0);
    expect(modelHash(partial)).toBe(modelHash(single));
  }, 400_000);

  it('fails at the join timeout when fewer than --min-workers joined (default: all of --workers)', async () => {
    const { coordinator, url } = await startCoordinator(['--data', data, '--workers', '2', '--join-timeout', '2000', ...TRAIN]);
    startWorker(url);
    const { code } = await coordinator.exited(120_000);
    expect(code).toBe(1);
    expect(coordinator.stderr()).toMatch(/only 1 of 2 workers joined within 2000 ms \(DPT_NO_WORKERS\)/);
  }, 180_000);
});

describe('the CSV cache on one host', () => {
  it('hashes a CSV once: the workers of the first run and every process of a second run read it through the index', async () => {
    const cache = { DPT_CACHE_DIR: join(directory.path, 'cache') };
    const hashing = /hashing .*rows\.csv to find its converted copy/g;
    const run = async (out: string): Promise<{ coordinator: CliProcess; workers: CliProcess[] }> => {
      const { coordinator, url } = await startCoordinator(
        ['--data', csv, '--workers', '2', '--out', out, '--epochs', '2', '--batch-size', '1024', '--token', TOKEN],
        cache,
      );
      const workers = [startWorker(url, cache), startWorker(url, cache)];
      expect((await coordinator.exited(180_000)).code, coordinator.stderr()).toBe(0);
      for (const worker of workers) expect((await worker.exited(60_000)).code, worker.stderr()).toBe(0);
      return { coordinator, workers };
    };
    const first = await run(join(directory.path, 'csv-1.json'));
    expect(first.coordinator.stderr().match(hashing)).toHaveLength(1);
    expect(first.coordinator.stderr()).toMatch(/converted .*rows\.csv \(45000 rows × 20 features\)/);
    for (const worker of first.workers) {
      expect(worker.stderr()).not.toMatch(hashing);
      expect(worker.stderr()).not.toMatch(/converted/);
    }
    const second = await run(join(directory.path, 'csv-2.json'));
    for (const process of [second.coordinator, ...second.workers]) {
      expect(process.stderr()).not.toMatch(hashing);
      expect(process.stderr()).not.toMatch(/converted/);
    }
    expect(modelHash(join(directory.path, 'csv-2.json'))).toBe(modelHash(join(directory.path, 'csv-1.json')));
  }, 400_000);
});
