// The cache of converted CSV files (issue #11 item 5): a CSV is converted once to a .dpt entry
// named by the SHA-256 of its bytes and the label choice, and a stat-keyed index lets every later
// process on the host find that entry without reading the CSV again (hashing 2 GB takes ~5 s).
// The same cache holds sparse entries (issue #13: LIBSVM, hashed CSV) through a CacheConverter,
// whose key (format and options) is part of the index and entry names.
//
// The rule. One index record per (CACHE_VERSION, real path of the CSV, label choice) holds the
// CSV's device, inode, size, mtime and ctime (nanoseconds) as they were when it was hashed, the
// hash, and the entry's stat when this process wrote it or last checked it whole. An open
// whose stat of the CSV equals the record takes the hash from it and reads no byte of the CSV;
// any difference (a write, `touch`, chmod, a rename or copy over it) means a full re-hash, and a
// new entry when the bytes differ. An entry whose stat equals the record is opened without a
// whole check (each block is still checked before its rows are used, shared/binary-dataset.ts);
// any other entry is checked whole first, and converted again if damaged.
// A record is written only for a CSV whose mtime is more than RACY_MS before the stat that
// precedes the hash and whose stat did not change while it was hashed (git's "racily clean"
// rule): a write after that stat then gets a later mtime even on a file system with
// coarse timestamps, so it cannot look like the recorded state.
// The limit: a rewrite that keeps the size, restores the mtime to the nanosecond and lands in
// the same ctime tick (a few ms on Linux; programs cannot set ctime) is not seen, nor is a clock
// set back. `touch` the CSV, or delete $DPT_CACHE_DIR/index, to force a re-hash.
// Concurrency: every file here is written under a temporary name and renamed into place, so
// processes converting the same CSV at once each write a whole entry (with equal bytes) and
// readers never see a partial one; the last rename wins, which only costs one more whole check.

import { createHash } from 'node:crypto';
import { type BigIntStats, createReadStream, existsSync, mkdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import { BinaryDataset } from './binary-dataset.js';
import { convertCsvToBinary } from './csv-convert.js';
import { DatasetError } from './errors.js';

/** Bumped when the conversion could produce other bytes, so old cache entries are not reused. */
export const CACHE_VERSION = 1;
/** A CSV modified less than this long before it was hashed is not indexed (its next open hashes it again). */
const RACY_MS = 3000;
/** CSVs from this size on are announced before they are hashed (~20 ms and up: a pause worth a line). */
const HASH_REPORT_BYTES = 8 * 1024 * 1024;

/** What reads a whole file, for callers that count (tests: a cached open reads nothing whole). */
export type WholeRead = 'hash' | 'convert' | 'verify';

/**
 * Another kind of entry than the dense .dpt (issue #13: the sparse one): its key (part of the
 * index and entry names, so each kind and option set has its own entries), how to convert, and how
 * to check an entry whole (throws when damaged).
 */
export interface CacheConverter {
  readonly key: string;
  /** Entry file name ending, e.g. '.sparse.dpt'. */
  readonly extension: string;
  /** Converts `input` to `entry`; returns a description of what was written for the progress line. */
  convert(input: string, entry: string): Promise<string>;
  verify(entry: string): void;
}

export interface CsvCacheOptions {
  /** The cache folder ($DPT_CACHE_DIR or its default, shared/data-file.ts). */
  readonly directory: string;
  /** Header name or 0-based index of the label; undefined: the last column. */
  readonly labelColumn: string | undefined;
  /**
   * Most distinct labels a conversion accepts (default DEFAULT_MAX_CLASSES of shared/classes.ts). Not
   * part of the cache key: an entry is the same whatever the bound, so the caller checks its classes.
   */
  readonly maxClasses?: number | undefined;
  readonly onProgress?: ((line: string) => void) | undefined;
  /** Called before each whole read of the CSV ('hash', 'convert') or of a cache entry ('verify'). */
  readonly onWholeRead?: ((what: WholeRead, path: string) => void) | undefined;
  /** Default: the dense .dpt conversion of shared/csv-convert.ts. */
  readonly converter?: CacheConverter | undefined;
}

/** The identifying part of a stat, as strings (bigint nanoseconds do not survive JSON). */
interface FileStamp {
  readonly dev: string;
  readonly ino: string;
  readonly size: string;
  readonly mtimeNs: string;
  readonly ctimeNs: string;
}

/** One index record (a JSON file under index/); `entry` is null until the entry was checked whole. */
interface IndexRecord {
  readonly version: number;
  readonly path: string;
  readonly label: string | null;
  readonly csv: FileStamp;
  readonly sha256: string;
  readonly entry: FileStamp | null;
}

/**
 * The .dpt cache entry of the CSV at `path`, converted if absent or damaged. Reads the CSV only
 * when the index has no record matching its stat (see the file header).
 */
export async function cachedConversion(path: string, options: CsvCacheOptions): Promise<string> {
  const { directory, labelColumn } = options;
  mkdirSync(directory, { recursive: true });
  const realPath = realpathOrSelf(path);
  // A converter's key follows the label choice; without one the names are those of the dense cache before converters existed.
  const kind = options.converter === undefined ? '' : `\0${options.converter.key}`;
  const indexPath = join(directory, 'index', `${sha256Hex(`${CACHE_VERSION}\0${realPath}\0${labelColumn ?? ''}${kind}`).slice(0, 32)}.json`);
  const statAt = Date.now();
  const before = stampOf(path);
  const recorded = readRecord(indexPath);
  const isKnown = recorded !== null && sameStamp(recorded.csv, before) && recorded.path === realPath && recorded.label === (labelColumn ?? null);
  let digest: string;
  if (isKnown) digest = recorded.sha256;
  else {
    options.onWholeRead?.('hash', path);
    if (Number(before.size) >= HASH_REPORT_BYTES) {
      options.onProgress?.(`hashing ${path} to find its converted copy (not indexed on this host, or changed since)`);
    }
    digest = await sha256OfFile(path);
  }
  const entryPath = join(
    directory,
    `${sha256Hex(`${CACHE_VERSION}\0${digest}\0${labelColumn ?? ''}${kind}`).slice(0, 32)}${options.converter?.extension ?? '.dpt'}`,
  );
  // The record vouches for the entry if it names these bytes and the entry is the one it recorded.
  const isVouched = recorded !== null && recorded.sha256 === digest && recorded.entry !== null && sameStamp(recorded.entry, stampOrNull(entryPath));
  if (isKnown && isVouched) return entryPath;

  const isConverted = !isVouched && !isUsableEntry(entryPath, path, options);
  if (isConverted) {
    const started = performance.now();
    options.onWholeRead?.('convert', path);
    let what: string;
    if (options.converter === undefined) {
      const summary = await convertCsvToBinary(path, entryPath, { labelColumn, maxClasses: options.maxClasses });
      what = `${summary.rows} rows × ${summary.features} features`;
    } else what = await options.converter.convert(path, entryPath);
    options.onProgress?.(`converted ${path} (${what}) to ${entryPath} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  const after = stampOf(path);
  if (!sameStamp(before, after)) {
    // The entry's name says it holds the bytes hashed; if they changed under the conversion it may not.
    if (isConverted) rmSync(entryPath, { force: true });
    throw new DatasetError(path, undefined, undefined, 'the file changed while it was being read; open it again once it is written');
  }
  const isRacy = statAt - Number(BigInt(after.mtimeNs) / 1_000_000n) <= RACY_MS;
  const entry = stampOrNull(entryPath);
  if (!isRacy && entry !== null) {
    writeRecord(indexPath, { version: CACHE_VERSION, path: realPath, label: labelColumn ?? null, csv: after, sha256: digest, entry }, options);
  }
  return entryPath;
}

/**
 * Whether the entry at `entryPath` exists and passes a whole check: a damaged one is converted
 * again rather than failing every worker's reads. The check reads the entry once (per host, as
 * long as the index record stays valid).
 */
function isUsableEntry(entryPath: string, csvPath: string, options: CsvCacheOptions): boolean {
  const { converter } = options;
  if (converter !== undefined) {
    if (!existsSync(entryPath)) return false;
    try {
      options.onWholeRead?.('verify', entryPath);
      converter.verify(entryPath);
      return true;
    } catch (error) {
      options.onProgress?.(`the cache entry ${entryPath} is damaged (${(error as Error).message}); converting ${csvPath} again`);
      return false;
    }
  }
  let entry: BinaryDataset | null = null;
  try {
    entry = BinaryDataset.open(entryPath, 'the cache entry');
  } catch {
    return false; // not cached yet (ENOENT), or a header that does not parse: converted again
  }
  try {
    options.onWholeRead?.('verify', entryPath);
    entry.verify();
    return true;
  } catch (error) {
    options.onProgress?.(`the cache entry ${entryPath} is damaged (${(error as Error).message}); converting ${csvPath} again`);
    return false;
  } finally {
    entry.close();
  }
}

function readRecord(indexPath: string): IndexRecord | null {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(indexPath, 'utf8'));
  } catch {
    return null; // no record yet, or one cut short by a crash of an old writer: hashed again
  }
  const record = value as Partial<IndexRecord> | null; // checked field by field below
  if (
    record === null ||
    typeof record !== 'object' ||
    record.version !== CACHE_VERSION ||
    typeof record.path !== 'string' ||
    !(record.label === null || typeof record.label === 'string') ||
    typeof record.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(record.sha256) ||
    !isStamp(record.csv) ||
    !(record.entry === null || isStamp(record.entry))
  ) {
    return null;
  }
  return record as IndexRecord; // every field checked above
}

function writeRecord(indexPath: string, record: IndexRecord, options: CsvCacheOptions): void {
  try {
    mkdirSync(dirname(indexPath), { recursive: true });
    writeFileAtomic(indexPath, `${JSON.stringify(record)}\n`);
  } catch (error) {
    // Without a record (e.g. a read-only cache folder) the next open hashes the CSV again: slower, never wrong.
    options.onProgress?.(`could not record the CSV cache index ${indexPath} (${(error as Error).message})`);
  }
}

function isStamp(value: unknown): value is FileStamp {
  if (typeof value !== 'object' || value === null) return false;
  const stamp = value as Record<string, unknown>;
  return ['dev', 'ino', 'size', 'mtimeNs', 'ctimeNs'].every((field) => typeof stamp[field] === 'string' && /^\d+$/.test(stamp[field] as string));
}

function stampOf(path: string): FileStamp {
  let stats: BigIntStats;
  try {
    stats = statSync(path, { bigint: true });
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return toStamp(stats);
}

function stampOrNull(path: string): FileStamp | null {
  const stats = statSync(path, { bigint: true, throwIfNoEntry: false });
  return stats === undefined ? null : toStamp(stats);
}

function toStamp(stats: BigIntStats): FileStamp {
  return { dev: String(stats.dev), ino: String(stats.ino), size: String(stats.size), mtimeNs: String(stats.mtimeNs), ctimeNs: String(stats.ctimeNs) };
}

function sameStamp(a: FileStamp, b: FileStamp | null): boolean {
  return b !== null && a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function realpathOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path; // the open that follows reports the problem
  }
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  } catch (error) {
    throw new DatasetError(path, undefined, undefined, `cannot read the file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  }
  return hash.digest('hex');
}
