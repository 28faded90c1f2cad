// The remote reader (worker/remote-data.ts) against the coordinator's real /data route on a real
// socket, with real cache files: blocks land in the cache as served, a second reader of the same
// cache fetches nothing, a damaged cached block is fetched again (and only it), two readers
// filling one cache at once both end with the served bytes, another file is refused. Also the
// lazy row store: rows loaded unit by unit, in any order, standardized before or after, hold the
// same float32 bits as the whole file read at once.

import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDataRoute } from '../../coordinator/data-route.js';
import { BinaryDataset, BinaryDatasetWriter } from '../../shared/binary-dataset.js';
import { DatasetError } from '../../shared/errors.js';
import { type LabelArray, logisticModelKernel } from '../../shared/model-kernel.js';
import type { ScheduleSpec } from '../../shared/schedule.js';
import { forEachBlockOfUnit, UnitNeeds } from '../../worker/block-needs.js';
import { PartComputer } from '../../worker/compute.js';
import { RemoteDataFile } from '../../worker/remote-data.js';
import { RemoteRows } from '../../worker/remote-rows.js';
import { RowStore } from '../../worker/row-store.js';

const BLOCK = 1 << 20;
const directory = mkdtempSync(join(tmpdir(), 'dpt-remote-'));
// 30,000 rows × 20 features: 2.4 MB of features and 30 KB of labels, three 1 MiB content blocks.
const ROWS = 30_000;
const D = 20;
const source = join(directory, 'source.dpt');
const anotherSource = join(directory, 'another.dpt');
let identity = '';
let server: Server;
let url = '';
const savedCacheDir = process.env.DPT_CACHE_DIR;

function writeData(path: string, salt: number): string {
  const x = Float32Array.from({ length: ROWS * D }, (_, i) => Math.sin(i * 0.37 + salt) * 3);
  const y = Uint8Array.from({ length: ROWS }, (_, r) => (Math.cos(r + salt) > 0 ? 1 : 0));
  const writer = new BinaryDatasetWriter(path, { featureNames: Array.from({ length: D }, (_, j) => `f${j}`), labelName: 'y' });
  writer.append(x, y, ROWS);
  return writer.finish().identity;
}

beforeAll(async () => {
  identity = writeData(source, 0);
  writeData(anotherSource, 1);
  const route = createDataRoute({ binaryPath: source, identity, token: 'secret', log: () => undefined });
  server = createServer((request, response) => {
    const target = new URL(request.url ?? '/', 'http://test');
    if (!route.request(request, response, target)) response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/data`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(directory, { recursive: true, force: true });
});

afterEach(() => {
  if (savedCacheDir === undefined) delete process.env.DPT_CACHE_DIR;
  else process.env.DPT_CACHE_DIR = savedCacheDir;
});

function useCache(name: string): string {
  const cache = join(directory, name);
  process.env.DPT_CACHE_DIR = cache;
  return cache;
}

const sourceOf = () => ({ url: new URL(url), token: 'secret', ca: null, socketPath: null });

describe('RemoteDataFile', () => {
  it('fetches only the blocks asked for, checks them and writes them where the file has them', async () => {
    useCache('cache-a');
    const file = await RemoteDataFile.open(sourceOf(), identity);
    try {
      expect(file.layout.blocks).toBe(3);
      await file.ensure([2]);
      expect(file.isPresent(2)).toBe(true);
      expect(file.isPresent(0)).toBe(false);
      const blockBytes = file.layout.fileBytes - 4 * 3 - (file.layout.dataOffset + 2 * BLOCK); // the last block is short
      const stats = file.stats;
      expect(stats.blocksFetched).toBe(1);
      // Header, names and CRC table, then one block: nothing else crossed the socket.
      expect(stats.bytesFetched).toBe(file.layout.dataOffset + 4 * 3 + blockBytes);
      const cached = readFileSync(file.cachePath);
      const original = readFileSync(source);
      const at = file.layout.dataOffset + 2 * BLOCK;
      expect(cached.subarray(at, at + blockBytes).equals(original.subarray(at, at + blockBytes))).toBe(true);
      expect(cached.subarray(0, file.layout.dataOffset).equals(original.subarray(0, file.layout.dataOffset))).toBe(true);
    } finally {
      file.close();
    }
  });

  it('reads a full cache without a single request, and fetches again only a block damaged in it', async () => {
    useCache('cache-b');
    const first = await RemoteDataFile.open(sourceOf(), identity);
    await first.ensure([0, 1, 2]);
    const cachePath = first.cachePath;
    first.close();
    const again = await RemoteDataFile.open(sourceOf(), identity);
    await again.ensure([0, 1, 2]);
    expect(again.stats).toEqual({ requests: 0, bytesFetched: 0, blocksFetched: 0, blocksFromCache: 3 });
    again.close();
    // A torn write (a crash mid-block): that block fails its CRC and is fetched again, alone.
    const fd = openSync(cachePath, 'r+');
    writeSync(fd, Buffer.alloc(100, 0xff), 0, 100, first.layout.dataOffset + BLOCK + 500);
    closeSync(fd);
    const repaired = await RemoteDataFile.open(sourceOf(), identity);
    await repaired.ensure([0, 1, 2]);
    expect(repaired.stats).toMatchObject({ requests: 1, bytesFetched: BLOCK, blocksFetched: 1, blocksFromCache: 2 });
    repaired.close();
    expect(readFileSync(cachePath).equals(readFileSync(source))).toBe(true);
  });

  it('lets two readers fill one cache at the same time: both end with the served bytes', async () => {
    useCache('cache-c');
    const [a, b] = await Promise.all([RemoteDataFile.open(sourceOf(), identity), RemoteDataFile.open(sourceOf(), identity)]);
    await Promise.all([a.ensure([0, 1, 2]), b.ensure([2, 1, 0])]);
    expect(a.cachePath).toBe(b.cachePath);
    a.close();
    b.close();
    expect(readFileSync(a.cachePath).equals(readFileSync(source))).toBe(true);
    const reader = BinaryDataset.open(a.cachePath);
    reader.verify(); // every block passes its CRC and value checks
    reader.close();
  });

  it("refuses a file that is not the run's data before writing anything, naming the URL", async () => {
    const cache = useCache('cache-d');
    const other = 'f'.repeat(64);
    const error = await RemoteDataFile.open(sourceOf(), other).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(DatasetError);
    expect((error as Error).message).toMatch(
      new RegExp(`^http://127\\.0\\.0\\.1:\\d+/data: is not the coordinator's data: its identity is ${identity.slice(0, 16)}…, the run's is ffffffffffffffff…`),
    );
    expect(() => readFileSync(join(cache, 'remote', `${other}.dpt`))).toThrow(/ENOENT/);
  });

  it('refuses a file of another shape after its first 64 bytes, before fetching its names and table', async () => {
    useCache('cache-h');
    const error = await RemoteDataFile.open(sourceOf(), identity, { rows: 10, features: D }).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect((error as Error).message).toMatch(/\/data: is not the coordinator's data: 30000×20 here, 10×20 in the run$/);
  });

  it('names the URL and the status for a wrong token', async () => {
    useCache('cache-e');
    const error = await RemoteDataFile.open({ ...sourceOf(), token: 'wrong' }, identity).then(
      () => null,
      (caught: unknown) => caught,
    );
    expect((error as Error).message).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/data: bytes 0 to 63: HTTP 401 Unauthorized: the token was refused/);
  });
});

describe('UnitNeeds and forEachBlockOfUnit', () => {
  it('collect each unit once and name exactly the blocks its features and labels lie in', () => {
    useCache('cache-f');
    const file = BinaryDataset.open(source);
    const layout = file.sections;
    file.close();
    const unitRows = Math.floor(BLOCK / (4 * D));
    const needs = new UnitNeeds(ROWS, unitRows);
    needs.begin();
    needs.addRows(Uint32Array.from([29_999, 5, 13_200, 6, 13_107]), 0, 5);
    needs.addRows(null, 100, 200);
    expect([...needs.units]).toEqual([2, 0, 1]);
    needs.begin();
    expect(needs.units).toEqual([]);
    for (let unit = 0; unit < Math.ceil(ROWS / unitRows); unit++) {
      const blocks = new Set<number>();
      forEachBlockOfUnit(layout, unitRows, unit, (block) => blocks.add(block));
      // Independently: the block of every byte of every row of the unit.
      const expected = new Set<number>();
      for (let row = unit * unitRows; row < Math.min(ROWS, (unit + 1) * unitRows); row++) {
        expected.add(Math.floor((row * 4 * D) / BLOCK));
        expected.add(Math.floor(((row + 1) * 4 * D - 1) / BLOCK));
        expected.add(Math.floor((layout.labelsOffset + row - layout.dataOffset) / BLOCK));
      }
      expect([...blocks].sort(), `unit ${unit}`).toEqual([...expected].sort());
    }
  });
});

describe('RowStore.openLazy', () => {
  it('holds, unit by unit in any order and standardized before or after, the bits of the whole file read at once', () => {
    const kernel = logisticModelKernel('js', D);
    const stats = { mean: Float64Array.from({ length: D }, (_, j) => j * 0.01), std: Float64Array.from({ length: D }, (_, j) => 1 + j * 0.1) };
    const whole = RowStore.open(source, 1 << 30, 64, kernel);
    whole.standardize(stats);
    const read = (store: RowStore): { x: Float32Array; y: LabelArray } => {
      let held: { x: Float32Array; y: LabelArray } | null = null;
      store.forEachRun(null, 0, ROWS, (x, y) => {
        held = { x: x.slice(0, ROWS * D), y: y.slice(0, ROWS) };
      });
      return held!; // forEachRun visits memory-held rows once
    };
    const expected = read(whole);
    const lazy = RowStore.openLazy(source, 1 << 30, 64, kernel);
    expect(lazy.mode).toBe('memory');
    const units = Math.ceil(ROWS / lazy.unitRows);
    lazy.load(units - 1);
    expect(lazy.isLoaded(units - 1)).toBe(true);
    expect(lazy.isLoaded(0)).toBe(false);
    expect(lazy.isFullyLoaded).toBe(false);
    lazy.standardize(stats); // between loads: loaded units now, the rest as they load
    for (let unit = units - 2; unit >= 0; unit--) lazy.load(unit);
    expect(lazy.isFullyLoaded).toBe(true);
    lazy.load(0); // twice: no second standardization
    const got = read(lazy);
    expect(Buffer.from(got.x.buffer).equals(Buffer.from(expected.x.buffer))).toBe(true);
    expect(Buffer.from(got.y).equals(Buffer.from(expected.y))).toBe(true);
    whole.close();
    lazy.close();
  });
});

describe('RemoteRows', () => {
  it("fetches only the blocks a step's rows touch, and the next step's ahead of it", async () => {
    useCache('cache-g');
    // File order, batches of 10,000 rows (800 KB of features): step 0 lies in content block 0,
    // step 1 in blocks 0 and 1; the labels of all rows in block 2.
    const schedule: ScheduleSpec = { rows: ROWS, valFraction: 0, seed: 1, shuffle: false, shuffleBlockRows: 0, batchSize: 10_000, chunksPerBatch: 4 };
    const kernel = logisticModelKernel('js', D);
    const file = await RemoteDataFile.open(sourceOf(), identity);
    const store = RowStore.openLazy(file.cachePath, 1 << 30, PartComputer.maxChunkRows(schedule), kernel);
    const computer = new PartComputer(store, schedule, kernel);
    const remote = new RemoteRows(file, store, computer);
    const assign = Uint32Array.from([7, 0, 4]); // worker 7 computes the whole batch
    try {
      const skeleton = file.stats.requests;
      await remote.prepareStep(0, assign, 7);
      expect([0, 1, 2].map((block) => file.isPresent(block))).toEqual([true, false, true]);
      expect(file.stats.requests - skeleton).toBe(2); // blocks 0 and 2: not contiguous, two requests
      const part = computer.compute({ kind: 'step', step: 0, assign, theta: new Float64Array(D + 1) }, 7);
      expect(part.rows.reduce((sum, rows) => sum + rows, 0)).toBe(10_000);
      const prefetch = vi.spyOn(file, 'prefetch');
      remote.prefetchAfter(0, assign, 7); // starts fetching block 1 for step 1
      expect(prefetch).toHaveBeenCalledWith([1]);
      const waiting = remote.prepareStep(1, assign, 7);
      expect(waiting).not.toBeNull(); // block 1 is on its way: step 1 waits for the same request
      await waiting;
      expect(file.stats).toMatchObject({ requests: skeleton + 3, blocksFetched: 3 });
      expect(remote.prepareStep(1, assign, 7)).toBeNull(); // everything step 1 needs is here
    } finally {
      remote.close();
    }
  });
});
