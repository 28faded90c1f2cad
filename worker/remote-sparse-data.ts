// A sparse run's data for a worker without a copy (issue #13): the sparse .dpt the coordinator made
// of its data (a LIBSVM file or a hashed CSV converted, or a sparse .dpt as given), downloaded whole
// by HTTP Range from its GET /data (through a relay's, or from an http(s) URL given as --data) into
// the cache of remote files, $DPT_CACHE_DIR/remote/<identity>.sparse.dpt: once per host and data.
// Checked on arrival before anything is fetched or kept: the fixed header's shape against the
// welcome's (a server cannot make the worker fetch more than the run's file), then the identity
// (header, meta block and CRC table) against the coordinator's, and once the rows are in, every
// block's CRC and every row (readSparseDataset). The entry appears under its name only whole and
// checked (a temporary file, then a rename); a cached entry is read and checked the same way, and
// one that fails is fetched again. A worker holds a sparse run's rows in memory anyway, so there are
// no paged reads here (the dense path's worker/remote-data.ts fetches blocks as rows need them).
//
// Exports: openRemoteSparseData, RemoteSparseData.

import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describeFailure, trackTemporary, untrackTemporary, writeFully } from '../shared/atomic-file.js';
import { cacheDirectory } from '../shared/data-file.js';
import { DatasetError, WriteError } from '../shared/errors.js';
import { readSparseDataset, SPARSE_HEADER_BYTES, type SparseDataset, sparseIdentity, sparseLayoutOfHeader } from '../shared/sparse-dataset.js';
import { type HttpSource, RangeClient } from './http-range.js';

/** Bytes asked for by one request: bounds what a download holds besides the file it writes. */
const PIECE_BYTES = 8 << 20;

/** The checked rows of the run's sparse .dpt, where they are cached, and what the download cost. */
export interface RemoteSparseData {
  readonly dataset: SparseDataset;
  readonly cachePath: string;
  /** Where the bytes came from (the URL without its query). */
  readonly where: string;
  /** Bytes fetched by this call (0: found in the cache). */
  readonly bytesFetched: number;
  readonly requests: number;
}

/**
 * The sparse .dpt of identity `identity` (the welcome's sha256) with `shape` (rows, D): the cache
 * entry when it is there and passes every check, else fetched from `source` and checked. Throws a
 * DatasetError naming the URL when the remote file is not that data or cannot be read, a WriteError
 * naming the cache folder when it cannot be written.
 */
export async function openRemoteSparseData(
  source: HttpSource,
  identity: string,
  shape: { readonly rows: number; readonly features: number },
): Promise<RemoteSparseData> {
  if (!/^[0-9a-f]{64}$/.test(identity)) throw new Error(`invariant broken: not a .dpt identity: ${identity}`); // the protocol checks it
  const directory = join(cacheDirectory(), 'remote');
  try {
    mkdirSync(directory, { recursive: true });
  } catch (error) {
    throw cacheProblem(directory, error);
  }
  const cachePath = join(directory, `${identity}.sparse.dpt`);
  const client = new RangeClient(source);
  try {
    const cached = readCached(cachePath, identity);
    if (cached !== null) return { dataset: cached, cachePath, where: client.where, bytesFetched: 0, requests: 0 };
    const temporary = `${cachePath}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    trackTemporary(temporary);
    try {
      await download(client, identity, shape, temporary);
      // Every block's CRC and every row, before the entry exists under its name.
      const dataset = checkDownloaded(temporary, client.where);
      // Another worker of this host may have installed the same checked bytes: replacing them is harmless.
      renameSync(temporary, cachePath);
      return { dataset: { ...dataset, path: cachePath }, cachePath, where: client.where, bytesFetched: client.bytes, requests: client.requests };
    } finally {
      rmSync(temporary, { force: true });
      untrackTemporary(temporary);
    }
  } catch (error) {
    if (error instanceof DatasetError || error instanceof WriteError) throw error;
    throw cacheProblem(directory, error);
  } finally {
    client.close();
  }
}

/** The cache entry, read and checked whole, or null when it is absent or fails (removed: fetched again). */
function readCached(cachePath: string, identity: string): SparseDataset | null {
  if (!existsSync(cachePath)) return null;
  try {
    const dataset = readSparseDataset(cachePath, 'the cache entry');
    if (dataset.identity === identity) return dataset;
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
  }
  // Corrupt, or another file under this identity's name: the download replaces it.
  rmSync(cachePath, { force: true });
  return null;
}

/** Fetches the file into `path`: the header and table first (shape and identity checked), then the rest in pieces. */
async function download(client: RangeClient, identity: string, shape: { readonly rows: number; readonly features: number }, path: string): Promise<void> {
  const where = client.where;
  const fixed = await client.fetch(0, SPARSE_HEADER_BYTES);
  const layout = sparseLayoutOfHeader(fixed, where);
  if (layout.rows !== shape.rows || layout.dims !== shape.features) {
    throw new DatasetError(
      where,
      undefined,
      undefined,
      `holds ${layout.rows} rows × ${layout.dims} features, the coordinator's data ${shape.rows} × ${shape.features}: not this run's data`,
    );
  }
  // The meta block and its padding follow the fixed header: the fixed part is not fetched twice.
  const header = layout.rowStartOffset > SPARSE_HEADER_BYTES ? Buffer.concat([fixed, await client.fetch(SPARSE_HEADER_BYTES, layout.rowStartOffset)]) : fixed;
  const table = await client.fetch(layout.tableOffset, layout.fileBytes);
  if (sparseIdentity(header, table) !== identity) {
    throw new DatasetError(where, undefined, undefined, `is not the coordinator's data (its header and checksums give another identity than ${identity})`);
  }
  const fd = openSync(path, 'wx');
  try {
    writeFully(fd, header, 0);
    writeFully(fd, table, layout.tableOffset);
    const piece = Buffer.allocUnsafe(Math.min(PIECE_BYTES, Math.max(1, layout.tableOffset - layout.rowStartOffset)));
    for (let start = layout.rowStartOffset; start < layout.tableOffset; start += PIECE_BYTES) {
      const end = Math.min(start + PIECE_BYTES, layout.tableOffset);
      writeFully(fd, await client.fetch(start, end, piece), start);
    }
  } finally {
    closeSync(fd);
  }
}

/** The downloaded file read and checked whole; a failure names where it came from, not the temporary file. */
function checkDownloaded(path: string, where: string): SparseDataset {
  try {
    return readSparseDataset(path, 'the downloaded data');
  } catch (error) {
    if (!(error instanceof DatasetError)) throw error;
    throw new DatasetError(where, undefined, undefined, `the data fetched from it fails its checks (${error.message.replace(`${path}: `, '')})`);
  }
}

function cacheProblem(directory: string, error: unknown): WriteError {
  return new WriteError(`cannot use the data cache in ${directory} (${describeFailure(error)}); set DPT_CACHE_DIR to a writable folder`, { cause: error });
}
