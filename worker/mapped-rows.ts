// Paged rows read through a memory map of the .dpt file (issue #15 item 3; native/mapped-file.c):
// one native call per chunk copies the chunk's rows, in the chunk's order, into the buffer the
// kernel reads, where the pread path (worker/coalesced-reads.ts) needs one system call per row
// under a row shuffle. The kernel sees the same float32 values and labels in the same order,
// so the bits do not change; only how they reach the buffer does.
// Integrity is what the pread path gives: no byte of a 1 MiB content block is copied before that
// block has passed BinaryDataset.checkBlock (CRC-32, finite features, labels in range), once per
// worker (a byte per block remembers it); a bad block throws the same DataBlockError naming file
// and block. A file cut short under the mapping (SIGBUS on a load past its new end) becomes a
// DatasetError naming the file, never a signal that kills the process.
// Mapped pages belong to the page cache, not to this process's heap: the OS reclaims them.

import type { BinaryDataset } from '../shared/binary-dataset.js';
import { ConfigError, DatasetError } from '../shared/errors.js';
import type { LabelArray } from '../shared/model-kernel.js';
import { loadNativeAddon, type NativeMode, nativeMode } from '../shared/native-addon.js';

declare const handleBrand: unique symbol;
/** A mapping held by the addon (an N-API external; unmapped by close() or when collected). */
type MappedHandle = { readonly [handleBrand]: true };

/** native/mapped-file.c's exports. */
interface MappedFileAddon {
  open(path: string, fileBytes: number, dataOffset: number, labelsOffset: number, rows: number, features: number, labelBytes: number): MappedHandle;
  /** 0: copied; n > 0: n blocks listed in `missing` need checking first (nothing copied); −1: the mapping faulted at file offset missing[0]. */
  gather(
    handle: MappedHandle,
    order: Uint32Array,
    from: number,
    to: number,
    x: Float32Array,
    y: LabelArray,
    verified: Uint8Array,
    missing: Float64Array,
  ): number;
  /** The file's size now (−1 if it cannot be known). */
  size(handle: MappedHandle): number;
  close(handle: MappedHandle): void;
}

/** How a paged worker reads rows: `auto` maps the file when the addon is there; `reads` always uses positioned reads. */
export type PagedReadsMode = 'auto' | 'reads';

/** DPT_PAGED_READS: auto (default) or reads (the pread path even where the file can be mapped: tests and benchmarks). */
export function pagedReadsMode(env: NodeJS.ProcessEnv = process.env): PagedReadsMode {
  const value = env.DPT_PAGED_READS;
  if (value === undefined || value === '' || value === 'auto') return 'auto';
  if (value === 'reads') return 'reads';
  throw new ConfigError(`DPT_PAGED_READS must be auto or reads (got ${JSON.stringify(value)})`);
}

/** Blocks listed per native call when several need checking (a chunk's first touches of the file). */
const MISSING_SLOTS = 64;

export class MappedRows {
  private readonly addon: MappedFileAddon;
  private readonly file: BinaryDataset;
  private handle: MappedHandle | null;
  /** One byte per content block: non-zero once it passed file.checkBlock. */
  private readonly verified: Uint8Array;
  private readonly missing = new Float64Array(MISSING_SLOTS);
  /** Chunks copied and content blocks checked through this reader, for tests and statistics. */
  chunks = 0;
  blocksChecked = 0;

  private constructor(addon: MappedFileAddon, file: BinaryDataset, handle: MappedHandle) {
    this.addon = addon;
    this.file = file;
    this.handle = handle;
    this.verified = new Uint8Array(file.blocks);
  }

  /**
   * Maps `file` read-only, or returns null when the addon is not there (no compiler at install,
   * DPT_NATIVE=off) or the map fails (the pread path then serves the rows). DPT_NATIVE=require
   * makes a missing addon a ConfigError and a failed map a DatasetError.
   */
  static open(file: BinaryDataset, mode: NativeMode = nativeMode()): MappedRows | null {
    const addon = loadNativeAddon<MappedFileAddon>('mapped-file', mode);
    if (addon === undefined) return null;
    const { fileBytes, dataOffset, labelsOffset, rows, features, labelBytes } = file.sections;
    try {
      return new MappedRows(addon, file, addon.open(file.path, fileBytes, dataOffset, labelsOffset, rows, features, labelBytes));
    } catch (error) {
      // Tests that must exercise the map say so: there a failure to map is an error, not a fallback.
      if (mode === 'require') throw new DatasetError(file.path, undefined, undefined, `cannot map the file (DPT_NATIVE=require): ${(error as Error).message}`);
      return null; // cannot map (address space, a file changed since it was opened): positioned reads report what is wrong
    }
  }

  /**
   * Fills rows [0, to − from) of x and y with rows order[from..to), in that order, checking each
   * content block on its first use. Throws DataBlockError for a block failing its checks and
   * DatasetError for a file cut short (naming the file), as the pread path does.
   */
  gather(order: Uint32Array, from: number, to: number, x: Float32Array, y: LabelArray): void {
    const handle = this.handle;
    if (handle === null) throw new Error(`${this.file.path}: read after close`);
    // Each round checks at least one new block, so the loop ends.
    for (let round = 0; round <= this.verified.length; round++) {
      const result = this.addon.gather(handle, order, from, to, x, y, this.verified, this.missing);
      if (result === 0) {
        this.chunks++;
        return;
      }
      if (result < 0) throw this.cutShort(this.missing[0]!);
      for (let k = 0; k < result; k++) {
        const block = this.missing[k]!;
        this.file.checkBlock(block);
        this.verified[block] = 1;
        this.blocksChecked++;
      }
    }
    throw new Error(`${this.file.path}: blocks still unchecked after checking every block`);
  }

  /** Unmaps the file (the BinaryDataset stays open: its owner closes it). */
  close(): void {
    if (this.handle === null) return;
    this.addon.close(this.handle);
    this.handle = null;
  }

  /** The DatasetError for a load past the file's end at file offset `offset`. */
  private cutShort(offset: number): DatasetError {
    const { labelsOffset, fileBytes } = this.file.sections;
    const now = this.handle === null ? -1 : this.addon.size(this.handle);
    const section = offset < labelsOffset ? 'features' : 'labels';
    const size = now < 0 ? 'its size is unknown now' : `it is ${now} bytes now`;
    return new DatasetError(
      this.file.path,
      undefined,
      undefined,
      `the file ends inside the ${section} (truncated?): ${size}, ${fileBytes} when this worker mapped it`,
    );
  }
}
