// A .dpt file read over HTTP Range (the coordinator's GET /data or any Range-capable server) into
// a local cache file, block by block, only the blocks asked for (issue #11 item 4).
//
// The cache file is $DPT_CACHE_DIR/remote/<identity>.dpt: the remote file's header, names and CRC
// table at their places, and the content blocks fetched so far; the rest is a hole (a sparse
// file). Whether a block is there is decided by its CRC-32 against the table, never by a side
// record, so the file needs no lock: a download cut short leaves blocks that fail their CRC and
// are fetched again (resumable), and workers on one host that fetch the same block write the same
// checked bytes to the same place. The header and table are fetched first and must give the
// identity the coordinator announced, else nothing is written; the cache file appears under its
// name only whole (temporary file, then a link that never replaces an existing entry).
// Rows are then read from the cache file by the paged row store (worker/row-store.ts), which
// checks each block again (CRC, finite values, labels) before any of its rows is used.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, linkSync, mkdirSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { describeFailure, trackTemporary, untrackTemporary, writeFully } from '../shared/atomic-file.js';
import { BinaryDataset, BLOCK_BYTES, type DptLayout, layoutOfHeader } from '../shared/binary-dataset.js';
import { cacheDirectory } from '../shared/data-file.js';
import { DataBlockError, DatasetError, WriteError } from '../shared/errors.js';
import { type HttpSource, RangeClient } from './http-range.js';

/** Bytes of the fixed header: the layout can be computed from them. */
const FIXED_HEADER_BYTES = 64;
/** Blocks fetched by one request at most (contiguous missing blocks are asked for together): with MAX_PARALLEL_REQUESTS in flight, at most 16 MiB of answers are held at once. */
const MAX_BLOCKS_PER_REQUEST = 4;
/** Requests in flight at most (the HTTP agent's socket limit too). */
const MAX_PARALLEL_REQUESTS = 4;

/** What a remote file has cost so far, for the worker's closing line and the tests. */
export interface RemoteStats {
  readonly requests: number;
  readonly bytesFetched: number;
  readonly blocksFetched: number;
  /** Blocks found intact in the cache file, not fetched. */
  readonly blocksFromCache: number;
}

export class RemoteDataFile {
  /** The local cache file the rows are read from (a .dpt file whose missing blocks are holes). */
  readonly cachePath: string;
  readonly layout: DptLayout;
  private readonly client: RangeClient;
  private readonly fd: number;
  private readonly table: Buffer;
  /** One bit per content block: in the cache file and passed its CRC. */
  private readonly present: Uint8Array;
  /** Blocks being fetched, each to the promise of its request. */
  private readonly inFlight = new Map<number, Promise<void>>();
  /** Cleared by close(): the descriptor's number may then belong to another file, so nothing touches it. */
  private isOpen = true;
  private blocksFetched = 0;
  private blocksFromCache = 0;
  private scratch: Buffer | null = null;
  /** Answer buffers not in use (each MAX_BLOCKS_PER_REQUEST blocks), and requests waiting for one: at most MAX_PARALLEL_REQUESTS are in flight. */
  private readonly buffers: Buffer[] = [];
  private buffersMade = 0;
  private readonly waiting: ((buffer: Buffer) => void)[] = [];

  private constructor(client: RangeClient, cachePath: string, fd: number, layout: DptLayout, table: Buffer) {
    this.client = client;
    this.cachePath = cachePath;
    this.fd = fd;
    this.layout = layout;
    this.table = table;
    this.present = new Uint8Array(Math.ceil(layout.blocks / 8));
  }

  /** Where the bytes come from, for messages (the URL without a query). */
  get where(): string {
    return this.client.where;
  }

  get stats(): RemoteStats {
    return { requests: this.client.requests, bytesFetched: this.client.bytes, blocksFetched: this.blocksFetched, blocksFromCache: this.blocksFromCache };
  }

  /**
   * Opens the cache entry of the file with `identity` (64 hex digits, the coordinator's), or
   * creates it from the header, names and CRC table fetched from `source`; throws DatasetError
   * naming the URL when the remote file is not that data or cannot be read. `shape` (the
   * coordinator's rows and features) is checked before the names and table are fetched, so a
   * server cannot make the worker fetch or hold more than the run's file.
   */
  static async open(source: HttpSource, identity: string, shape: { readonly rows: number; readonly features: number } | null = null): Promise<RemoteDataFile> {
    if (!/^[0-9a-f]{64}$/.test(identity)) throw new Error(`not a .dpt identity: ${identity}`); // the protocol checks it
    const client = new RangeClient(source);
    try {
      const directory = join(cacheDirectory(), 'remote');
      mkdirSync(directory, { recursive: true });
      const cachePath = join(directory, `${identity}.dpt`);
      const cached = openEntry(cachePath, identity);
      if (cached !== null) return new RemoteDataFile(client, cachePath, cached.fd, cached.layout, cached.table);
      const fetched = await fetchSkeleton(client, identity, shape);
      installEntry(cachePath, fetched, identity);
      const entry = openEntry(cachePath, identity);
      if (entry === null)
        throw new DatasetError(
          cachePath,
          undefined,
          undefined,
          'the cache entry just written does not open (is the cache folder shared with another dpt version?)',
        );
      return new RemoteDataFile(client, cachePath, entry.fd, entry.layout, entry.table);
    } catch (error) {
      client.close();
      throw error;
    }
  }

  /** Whether every block in `blocks` is in the cache file (checked): rows in them can be read now. */
  isPresent(block: number): boolean {
    return (this.present[block >>> 3]! & (1 << (block & 7))) !== 0;
  }

  /**
   * Makes every block of `blocks` present: found intact in the cache file, or fetched, checked
   * against the CRC table and written there. Rejects with a DataBlockError (a block that fails its
   * CRC as served) or a DatasetError (HTTP), both naming the URL.
   */
  async ensure(blocks: readonly number[]): Promise<void> {
    if (!this.isOpen) throw new DatasetError(this.where, undefined, undefined, 'read after close');
    const waits: Promise<void>[] = [];
    const missing: number[] = [];
    for (const block of blocks) {
      if (this.isPresent(block)) continue;
      const pending = this.inFlight.get(block);
      if (pending !== undefined) waits.push(pending);
      else if (this.isIntactLocally(block)) {
        this.markPresent(block);
        this.blocksFromCache++;
      } else missing.push(block);
    }
    missing.sort((a, b) => a - b);
    let i = 0;
    while (i < missing.length) {
      const first = missing[i]!;
      let end = first + 1;
      while (i + 1 < missing.length && missing[i + 1] === end && end - first < MAX_BLOCKS_PER_REQUEST) {
        end++;
        i++;
      }
      i++;
      const fetching = this.fetchBlocks(first, end).finally(() => {
        for (let block = first; block < end; block++) this.inFlight.delete(block);
      });
      for (let block = first; block < end; block++) this.inFlight.set(block, fetching);
      waits.push(fetching);
    }
    // Every request settles before this does (no fetch outlives the step that asked), then the first failure is reported.
    const results = await Promise.allSettled(waits);
    for (const result of results) if (result.status === 'rejected') throw result.reason;
  }

  /** Starts fetching `blocks` ahead of need; a failure is left for the ensure() that needs them to report. */
  prefetch(blocks: readonly number[]): void {
    this.ensure(blocks).catch(() => {
      // Deliberately ignored here: the blocks stay missing, and the step that needs them fetches
      // them again and reports the failure (one report, where it matters).
    });
  }

  /** Closes the cache file and the connections; a fetch still under way then writes nothing and rejects. */
  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    this.client.close();
    closeSync(this.fd);
  }

  /** Fetches blocks [first, end) in one request, checks each against the table, writes them to the cache file. */
  private async fetchBlocks(first: number, end: number): Promise<void> {
    const { dataOffset, tableOffset } = this.layout;
    const start = dataOffset + first * BLOCK_BYTES;
    const stop = Math.min(dataOffset + end * BLOCK_BYTES, tableOffset);
    const buffer = await this.takeBuffer();
    try {
      this.check(first, end, start, await this.client.fetch(start, stop, buffer));
    } finally {
      this.giveBuffer(buffer);
    }
    this.blocksFetched += end - first;
  }

  /** A free answer buffer, made if fewer than MAX_PARALLEL_REQUESTS exist, else the next one given back (memory stays bounded). */
  private takeBuffer(): Promise<Buffer> {
    const free = this.buffers.pop();
    if (free !== undefined) return Promise.resolve(free);
    if (this.buffersMade < MAX_PARALLEL_REQUESTS) {
      this.buffersMade++;
      return Promise.resolve(Buffer.allocUnsafe(MAX_BLOCKS_PER_REQUEST * BLOCK_BYTES));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private giveBuffer(buffer: Buffer): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(buffer);
    else this.buffers.push(buffer);
  }

  /** Checks blocks [first, end), fetched as `bytes` from file offset `start`, against the table, then writes them to the cache file. */
  private check(first: number, end: number, start: number, bytes: Buffer): void {
    for (let block = first; block < end; block++) {
      const from = (block - first) * BLOCK_BYTES;
      const content = bytes.subarray(from, Math.min(from + BLOCK_BYTES, bytes.length));
      if (crc32(content) !== this.table.readUInt32LE(4 * block)) {
        throw new DataBlockError(
          this.where,
          block,
          `content block ${block} of ${this.layout.blocks} (file bytes ${start + from} to ${start + from + content.length}) as served fails its CRC-32 check: the server's copy is corrupt or not the file its header describes`,
        );
      }
    }
    if (!this.isOpen) throw new DatasetError(this.where, undefined, undefined, 'closed while fetching');
    // Written only once every block of the request passed: a bad answer leaves the cache as it was.
    try {
      writeFully(this.fd, bytes, start);
    } catch (error) {
      throw new WriteError(`${this.cachePath}: cannot write the data cache (${describeFailure(error)}); set DPT_CACHE_DIR to a folder with room`, {
        cause: error,
      });
    }
    for (let block = first; block < end; block++) this.markPresent(block);
  }

  /** Whether block `block` of the cache file passes its CRC (it was fetched earlier, by this or another worker). */
  private isIntactLocally(block: number): boolean {
    const { dataOffset, tableOffset } = this.layout;
    const start = dataOffset + block * BLOCK_BYTES;
    const length = Math.min(BLOCK_BYTES, tableOffset - start);
    this.scratch ??= Buffer.allocUnsafe(BLOCK_BYTES);
    const content = this.scratch.subarray(0, length);
    let done = 0;
    while (done < length) {
      const count = readSync(this.fd, content, done, length - done, start + done);
      if (count === 0) return false;
      done += count;
    }
    return crc32(content) === this.table.readUInt32LE(4 * block);
  }

  private markPresent(block: number): void {
    this.present[block >>> 3]! |= 1 << (block & 7);
  }
}

/** The remote file's header (with names) and CRC table, fetched and checked to give `identity`. */
interface Skeleton {
  readonly layout: DptLayout;
  readonly header: Buffer;
  readonly table: Buffer;
}

async function fetchSkeleton(client: RangeClient, identity: string, shape: { readonly rows: number; readonly features: number } | null): Promise<Skeleton> {
  const fixed = await client.fetch(0, FIXED_HEADER_BYTES);
  const layout = layoutOfHeader(client.where, fixed);
  if (shape !== null && (layout.rows !== shape.rows || layout.features !== shape.features)) {
    throw new DatasetError(
      client.where,
      undefined,
      undefined,
      `is not the coordinator's data: ${layout.rows}×${layout.features} here, ${shape.rows}×${shape.features} in the run`,
    );
  }
  const header = Buffer.concat([fixed, await client.fetch(FIXED_HEADER_BYTES, layout.dataOffset)]);
  const table = await client.fetch(layout.tableOffset, layout.fileBytes);
  const found = createHash('sha256').update(header).update(table).digest('hex');
  if (found !== identity) {
    throw new DatasetError(
      client.where,
      undefined,
      undefined,
      `is not the coordinator's data: its identity is ${found.slice(0, 16)}…, the run's is ${identity.slice(0, 16)}… (another file, or another version of it)`,
    );
  }
  return { layout, header, table };
}

/**
 * Writes a cache entry holding only the skeleton (the rest a hole) under a temporary name, then
 * links it into place: an entry another worker made first is kept (EEXIST), one that does not open
 * (a damaged entry) is replaced. The temporary file never outlives this call.
 */
function installEntry(cachePath: string, skeleton: Skeleton, identity: string): void {
  const temporary = `${cachePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temporary, 'wx');
  trackTemporary(temporary);
  try {
    try {
      writeFully(fd, skeleton.header, 0);
      writeFully(fd, skeleton.table, skeleton.layout.tableOffset);
      ftruncateSync(fd, skeleton.layout.fileBytes);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      linkSync(temporary, cachePath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // Another worker's entry, or a damaged one: keep the first, replace the second.
      const other = openEntry(cachePath, identity);
      if (other === null) renameSync(temporary, cachePath);
      else closeSync(other.fd);
    }
  } finally {
    rmSync(temporary, { force: true });
    untrackTemporary(temporary);
  }
}

/**
 * The cache entry at `cachePath` opened read-write with its layout and table, when its header and
 * table open as a .dpt file with identity `identity`; null otherwise.
 */
function openEntry(cachePath: string, identity: string): { fd: number; layout: DptLayout; table: Buffer } | null {
  let file: BinaryDataset;
  try {
    file = BinaryDataset.open(cachePath, 'the cache entry');
  } catch {
    return null; // absent or damaged: fetched again
  }
  try {
    if (file.identity !== identity) return null;
    const layout = file.sections;
    const fd = openSync(cachePath, 'r+');
    const table = Buffer.alloc(4 * layout.blocks);
    readSync(fd, table, 0, table.length, layout.tableOffset);
    return { fd, layout, table };
  } finally {
    file.close();
  }
}
