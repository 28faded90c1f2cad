// A worker's rows: the whole data file in memory when it fits the worker's memory budget, else
// read from the file by offset into a reusable staging buffer (out of core; a chunk's rows in file
// order, merged into runs: worker/coalesced-reads.ts). Either
// way a computation sees the same float32 values in the same order, so it gives the same bits.
// Either way no row is used before its 1 MiB block has passed its checks (CRC-32, finite features,
// labels 0 or 1; shared/binary-dataset.ts): in memory all at load, paged at a block's first read.
// A failing block throws DataBlockError, which the worker reports with the block's number.
// Paged rows come through a memory map of the file where the native addon is there (one native
// call copies a chunk's scattered rows: worker/mapped-rows.ts; rows in long runs are still read
// with positioned reads), else through positioned reads; the same bits either way.
// A third way for a file that fills up as it is fetched (worker/remote-data.ts): rows held in
// memory but read in units of about 1 MiB only when asked (load), so memory holds the rows used.

import { BinaryDataset, BLOCK_BYTES } from '../shared/binary-dataset.js';
import { adviseHugePages } from '../shared/huge-pages.js';
import type { LabelArray, ModelKernel } from '../shared/model-kernel.js';
import { applyStandardization, type Standardization } from '../shared/standardize.js';
import { CoalescedReader } from './coalesced-reads.js';
import { MappedRows, type PagedReadsMode, pagedReadsMode } from './mapped-rows.js';
import { chooseRowHolding, inMemoryCap, type MemoryCap, readMachineMemory } from './memory-limits.js';
import { RowPrefetch } from './prefetch-rows.js';

/** Where the rows live: the run's kernel allocates them (WebAssembly memory for the SIMD kernels). */
export type RowAllocator = Pick<ModelKernel, 'allocateRows'>;

/** Visits rows as (x, y, order, from, to): order[from..to) of x, or rows from..to when order is null. */
export type RowVisitor = (x: Float32Array, y: LabelArray, order: Uint32Array | null, from: number, to: number) => void;

export class RowStore {
  readonly rows: number;
  readonly features: number;
  /** 'memory': every row is held; 'paged': rows are read from the file as needed. */
  readonly mode: 'memory' | 'paged';
  /** Why the rows are paged though the budget would hold them (the memory cap), or null. */
  memoryNote: string | null = null;
  private readonly file: BinaryDataset | null;
  private readonly x: Float32Array;
  private readonly y: LabelArray;
  private standardization: Standardization | null = null;
  /** Rows loaded on demand (openLazy in memory): the file, and one flag per unit of unitRows rows; else null. */
  private lazy: { readonly file: BinaryDataset; readonly loaded: Uint8Array; count: number } | null = null;
  /** Rows per load unit: about 1 MiB of features, so a unit lies in at most two content blocks. */
  readonly unitRows: number;
  /** Paged: reads a chunk's rows in file order, merged into runs (worker/coalesced-reads.ts); else null. */
  private readonly coalesced: CoalescedReader | null;
  /** Paged: the next step's rows read ahead (worker/prefetch-rows.ts), created at the first prefetch; else null. */
  private ahead: RowPrefetch | null = null;
  /** Paged through a memory map (worker/mapped-rows.ts): chunks are copied from it; else null. */
  private mapped: MappedRows | null = null;

  private constructor(file: BinaryDataset | null, rows: number, features: number, x: Float32Array, y: LabelArray) {
    this.file = file;
    this.rows = rows;
    this.features = features;
    this.mode = file === null ? 'memory' : 'paged';
    this.x = x;
    this.y = y;
    this.unitRows = Math.max(1, Math.floor(BLOCK_BYTES / (4 * features)));
    this.coalesced = file === null ? null : new CoalescedReader(file, y.length, y);
  }

  /** How rows are held, for the worker's ready line: 'memory', 'paged, mapped' or 'paged, reads'. */
  get holding(): 'memory' | 'paged, mapped' | 'paged, reads' {
    if (this.file === null) return 'memory';
    return this.mapped === null ? 'paged, reads' : 'paged, mapped';
  }

  /** Chunks copied from the map and content blocks it checked so far (0 on the pread path), for tests and statistics. */
  get mappedStats(): { chunks: number; blocksChecked: number } {
    return { chunks: this.mapped?.chunks ?? 0, blocksChecked: this.mapped?.blocksChecked ?? 0 };
  }

  /** Reads issued by gather() so far (paged; 0 in memory): for tests and statistics. */
  get gatherReads(): number {
    return this.coalesced?.reads ?? 0;
  }

  /** Prefetches started and chunks gather() took from one (paged), for tests and statistics. */
  get prefetchStats(): { started: number; served: number } {
    return { started: this.ahead?.started ?? 0, served: this.ahead?.served ?? 0 };
  }

  /**
   * Paged: starts reading rows order[from..to) ahead, for a step not here yet (`stepRows`: the
   * most rows a step gives this worker). A gather of exactly those rows then copies them from
   * memory; a gather of other rows reads the file as before. Rows in runs only (a block shuffle):
   * rows scattered over the file are not read ahead (worker/prefetch-rows.ts), and those are the
   * rows a mapped store copies from the map. Nothing to do in memory.
   */
  prefetch(order: Uint32Array | null, from: number, to: number, stepRows: number): void {
    if (this.file === null) return;
    this.ahead ??= new RowPrefetch(this.file, stepRows, this.y);
    this.ahead.begin(order, from, to);
  }

  /** Resolves once no prefetch read is under way. */
  prefetchSettled(): Promise<void> {
    return this.ahead?.settled() ?? Promise.resolve();
  }

  /**
   * Opens `binaryPath`; holds it in memory if its rows take at most `memoryBudgetBytes`, else
   * keeps a staging buffer of `stagingRows` rows (the largest contiguous run read at once). The
   * budget is capped by `cap` (default: what wasm32 and this machine allow, worker/memory-limits.ts).
   * Paged rows come through a memory map unless `pagedReads` is 'reads' (default: DPT_PAGED_READS).
   */
  static open(
    binaryPath: string,
    memoryBudgetBytes: number,
    stagingRows: number,
    kernel: RowAllocator,
    cap?: MemoryCap,
    pagedReads: PagedReadsMode = pagedReadsMode(),
  ): RowStore {
    const file = BinaryDataset.open(binaryPath);
    const { rows, features } = file;
    const holding = chooseRowHolding(rows, features, memoryBudgetBytes, cap ?? inMemoryCap(readMachineMemory()));
    // Rows live where the kernel reads them (WebAssembly memory for the SIMD kernel): no copies per step.
    if (holding.mode === 'memory') {
      const { x, y } = kernel.allocateRows(rows, features);
      // Before the first write: the load then faults in 2 MiB pages, not 4 KiB ones.
      adviseHugePages(x);
      file.readRows(0, rows, x);
      file.readLabels(0, rows, y);
      file.close();
      return new RowStore(null, rows, features, x, y);
    }
    return RowStore.paged(file, stagingRows, kernel, holding.note, pagedReads);
  }

  /**
   * As open(), but rows held in memory are read only as load() asks, unit by unit: for a file
   * whose blocks arrive as they are needed (a remote file's cache). Paged rows need no load.
   */
  static openLazy(
    binaryPath: string,
    memoryBudgetBytes: number,
    stagingRows: number,
    kernel: RowAllocator,
    cap?: MemoryCap,
    pagedReads: PagedReadsMode = pagedReadsMode(),
  ): RowStore {
    const file = BinaryDataset.open(binaryPath);
    const { rows, features } = file;
    const holding = chooseRowHolding(rows, features, memoryBudgetBytes, cap ?? inMemoryCap(readMachineMemory()));
    if (holding.mode === 'paged') return RowStore.paged(file, stagingRows, kernel, holding.note, pagedReads);
    // Pages of rows never loaded stay untouched zeros: the OS does not back them with memory.
    const { x, y } = kernel.allocateRows(rows, features);
    const store = new RowStore(null, rows, features, x, y);
    store.lazy = { file, loaded: new Uint8Array(Math.ceil(rows / store.unitRows)), count: 0 };
    return store;
  }

  private static paged(file: BinaryDataset, stagingRows: number, kernel: RowAllocator, note: string | null, pagedReads: PagedReadsMode): RowStore {
    const staging = Math.max(1, Math.min(file.rows, stagingRows));
    const { x, y } = kernel.allocateRows(staging, file.features);
    const store = new RowStore(file, file.rows, file.features, x, y);
    store.memoryNote = note;
    if (pagedReads !== 'reads') store.mapped = MappedRows.open(file);
    return store;
  }

  /** Whether the rows of unit `unit` (rows [unit·unitRows, (unit + 1)·unitRows)) can be visited now without load(). */
  isLoaded(unit: number): boolean {
    if (this.lazy === null) return this.file === null;
    return this.lazy.loaded[unit] === 1;
  }

  /**
   * Reads the rows of unit `unit` into memory (standardized if standardize() came first); the
   * caller has made their content blocks present. Nothing to do unless opened lazily in memory.
   * Throws DataBlockError when a block fails its checks.
   */
  load(unit: number): void {
    const lazy = this.lazy;
    if (lazy === null || lazy.loaded[unit] === 1) return;
    const from = unit * this.unitRows;
    const to = Math.min(this.rows, from + this.unitRows);
    lazy.file.readRows(from, to, this.x, from);
    lazy.file.readLabels(from, to, this.y, from);
    if (this.standardization !== null) applyStandardization(this.x.subarray(from * this.features, to * this.features), this.features, this.standardization);
    lazy.loaded[unit] = 1;
    lazy.count++;
  }

  /** Whether every row is in memory (a lazy store once every unit has loaded): no step needs a load or a fetch. */
  get isFullyLoaded(): boolean {
    if (this.lazy === null) return this.file === null;
    return this.lazy.count === this.lazy.loaded.length;
  }

  /** From now on rows are standardized as given (in place in memory; after each read when paged). */
  standardize(stats: Standardization): void {
    this.standardization = stats;
    if (this.mode !== 'memory') return;
    if (this.lazy === null) {
      applyStandardization(this.x, this.features, stats);
      return;
    }
    // Only the units loaded so far (the rest are standardized as they load): untouched pages stay untouched.
    const D = this.features;
    for (let unit = 0; unit < this.lazy.loaded.length; unit++) {
      if (this.lazy.loaded[unit] !== 1) continue;
      const from = unit * this.unitRows;
      applyStandardization(this.x.subarray(from * D, Math.min(this.rows, from + this.unitRows) * D), D, stats);
    }
  }

  /**
   * Calls `visit` for rows order[from..to) (or from..to when order is null). In memory: once,
   * over the rows where they are. Paged: once per contiguous run (consecutive row ids), each read
   * into the staging buffer, so a visitor that works row by row sees the same rows in the same order.
   */
  forEachRun(order: Uint32Array | null, from: number, to: number, visit: RowVisitor): void {
    if (this.file === null) {
      visit(this.x, this.y, order, from, to);
      return;
    }
    const capacity = this.y.length;
    let i = from;
    while (i < to) {
      const first = order === null ? i : order[i]!;
      let length = 1;
      while (i + length < to && length < capacity && (order === null ? i + length : order[i + length]!) === first + length) length++;
      this.read(first, length);
      visit(this.x, this.y, null, 0, length);
      i += length;
    }
  }

  /**
   * Calls `visit` once for rows order[from..to), gathered into one contiguous buffer when paged
   * (at most the staging size): for kernels whose bits depend on how rows are split into calls.
   */
  gather(order: Uint32Array | null, from: number, to: number, visit: RowVisitor): void {
    if (this.file === null) {
      visit(this.x, this.y, order, from, to);
      return;
    }
    const D = this.features;
    const filled = to - from;
    if (filled > this.y.length) throw new Error(`a chunk of ${filled} rows exceeds the staging buffer of ${this.y.length} rows`);
    if (this.mapped !== null && order !== null && !isInRuns(order, from, to)) this.mapped.gather(order, from, to, this.x, this.y);
    else if (this.ahead?.take(order, from, to, this.x, this.y) === true) {
      // read ahead, checked, and the very rows asked for
    } else if (order === null || this.coalesced === null) {
      this.file.readRows(from, to, this.x, 0);
      this.file.readLabels(from, to, this.y, 0);
    } else this.coalesced.gather(order, from, to, this.x, this.y);
    if (this.standardization !== null) standardizeRows(this.x, D, filled, this.standardization);
    visit(this.x, this.y, null, 0, filled);
  }

  close(): void {
    this.mapped?.close();
    this.ahead?.close();
    this.file?.close();
    this.lazy?.file.close();
  }

  private read(first: number, length: number): void {
    const file = this.file;
    if (file === null) return;
    file.readRows(first, first + length, this.x, 0);
    file.readLabels(first, first + length, this.y, 0);
    if (this.standardization !== null) standardizeRows(this.x, this.features, length, this.standardization);
  }
}

/**
 * A chunk whose rows come in runs (of nearby rows) this long on average is read with positioned
 * reads even where the file is mapped: one read a run costs little, and the kernel copies from
 * the page cache through its own (huge-page) mapping, where copying from the process's 4 KiB file
 * pages measured slower under a block shuffle (first epoch ~10 % at load average 2, 2–4× at 8;
 * equal once every page was touched). Scattered rows (a row shuffle), a read a row otherwise, are
 * copied from the map.
 */
export const MIN_RUN_ROWS = 8;

/**
 * Whether rows order[from..to) lie in runs of MIN_RUN_ROWS rows or more on average, a run going on
 * while each row follows the one before by 1 to MIN_RUN_ROWS rows (rows left out for validation
 * leave gaps in a shuffled block; a positioned read takes the gap along).
 */
function isInRuns(order: Uint32Array, from: number, to: number): boolean {
  const limit = (to - from) / MIN_RUN_ROWS;
  let runs = 1;
  for (let i = from + 1; i < to; i++) {
    const step = order[i]! - order[i - 1]!;
    if ((step < 1 || step > MIN_RUN_ROWS) && ++runs > limit) return false;
  }
  return runs <= limit;
}

/** The first `rows` rows of x ← (x − mean) / std, the same arithmetic as applyStandardization. */
function standardizeRows(x: Float32Array, D: number, rows: number, stats: Standardization): void {
  applyStandardization(x.subarray(0, rows * D), D, stats);
}
