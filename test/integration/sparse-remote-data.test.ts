// Sparse data without copies (issue #13 on issue #11 item 4), through the real CLI: workers whose
// host does not have the data file (the path the coordinator announces does not exist on their
// side: it was moved away once the coordinator had converted it) download the coordinator's sparse
// .dpt over GET /data, checked on arrival, into their host's cache, and train to the bits of a
// local run; behind a relay through the relay's /data, a corrupt cache entry fetched again; a file
// that is not the run's data is refused with one clear line.

import { copyFileSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, killAll, startCli, temporaryDirectory } from '../helpers/cli.js';
import { modelFileDigest, trainOnCluster } from '../helpers/cluster-runs.js';
import { libsvmText } from '../helpers/libsvm-text.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
const DATA_DIR = join(directory.path, 'data');
const svm = join(DATA_DIR, 'rows.svm');
/** Where the file goes while workers run: the announced path then does not exist on their side. */
const away = join(DATA_DIR, 'moved-away.svm');
const TOKEN = 'sparse-remote-token';
const FLAGS = ['--epochs', '2', '--batch-size', '45', '--chunks', '8', '--lr', '0.5', '--val-split', '0.1', '--seed', '7', '--l2', '0.02'];
/** The cache of the workers' host (the first test fills it; the second copies its entry). */
const workerCache = join(directory.path, 'cache-workers');
let local: { digest: string; params: string; losses: number[] };
mkdirSync(DATA_DIR);

afterEach(() => killAll());
afterAll(() => {
  killAll();
  directory.remove();
});

beforeAll(async () => {
  writeFileSync(svm, libsvmText({ rows: 400, maxIndex: 3000, seed: 41 }));
  local = await trainOnCluster(directory.path, 'local-w2', ['--data', svm, ...FLAGS], 2);
}, 240_000);

/** A coordinator of `svm` for `workers` workers, its conversion cached in its own folder; resolves once it listens. */
async function startCoordinator(name: string, workers: number, extra: string[] = []): Promise<{ cli: CliProcess; url: string; out: string; metrics: string }> {
  const out = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const cli = startCli(
    ['coordinator', '--data', svm, ...FLAGS, '--host', '127.0.0.1', '--port', '0', '--workers', String(workers), '--out', out, '--metrics', metrics, ...extra],
    { DPT_CACHE_DIR: join(directory.path, `cache-${name}`) },
  );
  const [, url = ''] = await cli.waitForLine(/listening on (ws:\/\/\S+)/, 120_000);
  return { cli, url, out, metrics };
}

function startWorker(url: string, cache: string, extra: string[] = []): CliProcess {
  return startCli(['worker', '--connect', url, '--token', TOKEN, '--connect-timeout', '60000', ...extra], { DPT_CACHE_DIR: cache });
}

/** Runs `body` with the data file moved away (restored after, whatever happens). */
async function withoutTheFile<T>(body: () => Promise<T>): Promise<T> {
  renameSync(svm, away);
  try {
    return await body();
  } finally {
    renameSync(away, svm);
  }
}

const FETCH_LINE =
  /: (\S+) is not on this host; reading the sparse data from (http:\/\/127\.0\.0\.1:\d+\/data) by range: (?:fetched (\d+) bytes|(found it in the cache))/;

describe('sparse data for workers without a copy', () => {
  it("workers that do not have the file download the coordinator's sparse .dpt over /data and train to the bits of a local run", async () => {
    const coordinator = await startCoordinator('remote', 2, ['--token', TOKEN]);
    const workers = await withoutTheFile(async () => {
      // Two workers of one host, sharing its cache, starting together.
      const started = [startWorker(coordinator.url, workerCache), startWorker(coordinator.url, workerCache)];
      for (const worker of started) await worker.waitForLine(/sparse rows × \d+ features .* ready in/, 120_000);
      return started;
    });
    expect((await coordinator.cli.exited(180_000)).code, coordinator.cli.stderr()).toBe(0);
    for (const worker of workers) expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    const lines = workers.map((worker) => FETCH_LINE.exec(worker.stderr()));
    for (const line of lines) expect(line?.[1], workers.map((worker) => worker.stderr()).join('\n')).toBe(svm);
    // At least one fetched it (the other may have found it in the cache by then); the bytes add up to what was served.
    const fetched = lines.map((line) => Number(line?.[3] ?? 0));
    expect(Math.max(...fetched)).toBeGreaterThan(0);
    const [, served = '-1'] = /served (\d+) bytes of the data file over \/data/.exec(coordinator.cli.stderr()) ?? [];
    expect(fetched[0]! + fetched[1]!).toBe(Number(served));
    // The entry is the whole sparse .dpt, under its identity.
    const entries = readdirSync(join(workerCache, 'remote'));
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatch(/^[0-9a-f]{64}\.sparse\.dpt$/);
    expect(statSync(join(workerCache, 'remote', entries[0]!)).size).toBe(Math.max(...fetched));
    expect(modelFileDigest(coordinator.out)).toBe(local.digest);
    expect(modelHash(coordinator.out)).toBe(local.params);
    expect(stepLosses(coordinator.metrics)).toEqual(local.losses);
  }, 300_000);

  it("behind a relay, through the relay's /data; a corrupt cache entry is fetched again, not used", async () => {
    // A host whose cache holds the entry with one flipped byte in the rows (header and table intact: the same identity).
    const cache = join(directory.path, 'cache-relayed');
    mkdirSync(join(cache, 'remote'), { recursive: true });
    const [entry] = readdirSync(join(workerCache, 'remote'));
    expect(entry, 'the first test leaves the entry').toBeDefined();
    const corrupt = join(cache, 'remote', entry!);
    copyFileSync(join(workerCache, 'remote', entry!), corrupt);
    const bytes = readFileSync(corrupt);
    bytes[2048] = bytes[2048]! ^ 0x40;
    writeFileSync(corrupt, bytes);

    const coordinator = await startCoordinator('relayed', 1, ['--token', TOKEN]);
    const relay = startCli(['relay', '--connect', coordinator.url, '--host', '127.0.0.1', '--port', '0', '--token', TOKEN]);
    const [, relayUrl = ''] = await relay.waitForLine(/relay listening on (ws:\/\/\S+)/, 120_000);
    const worker = await withoutTheFile(async () => {
      const started = startWorker(relayUrl, cache);
      await started.waitForLine(/sparse rows × \d+ features .* ready in/, 120_000);
      return started;
    });
    expect((await coordinator.cli.exited(180_000)).code, coordinator.cli.stderr()).toBe(0);
    expect((await relay.exited(30_000)).code, relay.stderr()).toBe(0);
    expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    const line = FETCH_LINE.exec(worker.stderr());
    // Fetched from where it connected (the relay), which passed /data through; the bad entry was not used.
    expect(line?.[2]).toBe(relayUrl.replace(/^ws:/, 'http:').replace(/\/?$/, '/data'));
    expect(Number(line?.[3] ?? 0)).toBe(bytes.length);
    expect(relay.stderr()).toMatch(/passing \/data through to the coordinator/);
    expect(readFileSync(corrupt).equals(readFileSync(join(workerCache, 'remote', entry!)))).toBe(true);
    expect(modelFileDigest(coordinator.out)).toBe(local.digest);
    expect(stepLosses(coordinator.metrics)).toEqual(local.losses);
  }, 300_000);

  it("refuses a file that is not the run's data, with one clear line (exit 2)", async () => {
    // A loopback coordinator without a token serves another sparse file; the worker is pointed at it by --data.
    const otherSvm = join(DATA_DIR, 'other.svm');
    writeFileSync(otherSvm, libsvmText({ rows: 400, maxIndex: 3000, seed: 42 }));
    const out = join(directory.path, 'other.json');
    const other = startCli(['coordinator', '--data', otherSvm, ...FLAGS, '--host', '127.0.0.1', '--port', '0', '--workers', '1', '--out', out], {
      DPT_CACHE_DIR: join(directory.path, 'cache-other'),
    });
    const [, otherUrl = ''] = await other.waitForLine(/listening on (ws:\/\/\S+)/, 120_000);
    const coordinator = await startCoordinator('refused', 1, ['--token', TOKEN]);
    const worker = startWorker(coordinator.url, join(directory.path, 'cache-refused'), ['--data', `${otherUrl.replace(/^ws:/, 'http:')}/data`]);
    const { code } = await worker.exited(120_000);
    expect(code, worker.stderr()).toBe(2);
    expect(worker.stderr()).toMatch(
      /^dpt: http:\/\/127\.0\.0\.1:\d+\/data: (?:holds \d+ rows × \d+ features, the coordinator's data \d+ × \d+: not this run's data|is not the coordinator's data)/m,
    );
    expect(worker.stderr()).not.toMatch(/\n\s+at /);
    // The coordinator is untouched: still waiting for a worker, nothing trained.
    expect(coordinator.cli.child.exitCode).toBeNull();
  }, 300_000);
});
