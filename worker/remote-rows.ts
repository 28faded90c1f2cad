// The rows of a worker that reads a remote file: before a step or a pass runs, the blocks its rows
// lie in are fetched (only those) and their units loaded into the row store; after a step, the
// blocks of the next step are fetched ahead, guessed from the same assignment table (assignments
// are sticky while the membership holds: coordinator/assignment.ts), so the fetch overlaps the
// wait for the next step. A wrong guess costs bytes, never a result: every step still waits for
// the blocks it needs, and every block is checked before its rows are used.

import type { PassMessage } from '../shared/protocol.js';
import { forEachBlockOfUnit, UnitNeeds } from './block-needs.js';
import type { PartComputer } from './compute.js';
import type { RemoteDataFile } from './remote-data.js';
import type { RowStore } from './row-store.js';

export class RemoteRows {
  readonly file: RemoteDataFile;
  private readonly computer: PartComputer;
  private readonly store: RowStore;
  private readonly needs: UnitNeeds;

  constructor(file: RemoteDataFile, store: RowStore, computer: PartComputer) {
    this.file = file;
    this.store = store;
    this.computer = computer;
    this.needs = new UnitNeeds(store.rows, store.unitRows);
  }

  /**
   * Readies the rows worker `workerId` computes in step `step` under `assign`: null when they are
   * ready now (units whose blocks were present are loaded at once), else a promise that resolves
   * once their blocks are fetched and loaded (rejects with the fetch's DatasetError).
   */
  prepareStep(step: number, assign: Uint32Array, workerId: number): Promise<void> | null {
    if (this.store.isFullyLoaded) return null; // the usual case after the first epoch of a row shuffle: no per-step scan
    this.needs.begin();
    this.computer.forEachStepRows(step, assign, workerId, (order, from, to) => this.needs.addRows(order, from, to));
    return this.prepare();
  }

  /** As prepareStep, for the rows of a pass message. */
  preparePass(message: PassMessage): Promise<void> | null {
    if (this.store.isFullyLoaded) return null;
    this.needs.begin();
    this.computer.forEachPassRows(message, (order, from, to) => this.needs.addRows(order, from, to));
    return this.prepare();
  }

  /** Starts fetching the blocks step `step` + 1 needs if the table stays `assign` (loaded when that step comes). */
  prefetchAfter(step: number, assign: Uint32Array, workerId: number): void {
    if (this.store.isFullyLoaded) return;
    this.needs.begin();
    this.computer.forEachStepRows(step + 1, assign, workerId, (order, from, to) => this.needs.addRows(order, from, to));
    const { blocks } = this.missing();
    if (blocks.length > 0) this.file.prefetch(blocks);
  }

  /** One line on what was fetched, for the worker's log. */
  summary(): string {
    const { requests, bytesFetched, blocksFetched, blocksFromCache } = this.file.stats;
    return `fetched ${bytesFetched} bytes of the data from ${this.file.where} in ${requests} request(s): ${blocksFetched} block(s) fetched, ${blocksFromCache} found in the cache ${this.file.cachePath}`;
  }

  /** Closes the cache file, its connections and the row store reading it (the session is over). */
  close(): void {
    this.file.close();
    this.store.close();
  }

  private prepare(): Promise<void> | null {
    const { units, blocks } = this.missing();
    if (units.length === 0) return null;
    if (blocks.length === 0) {
      for (const unit of units) this.store.load(unit);
      return null;
    }
    return this.file.ensure(blocks).then(() => {
      for (const unit of units) this.store.load(unit);
    });
  }

  /** The collected units not loaded yet, and the blocks of theirs not in the cache. */
  private missing(): { units: number[]; blocks: number[] } {
    const units: number[] = [];
    const blocks = new Set<number>();
    for (const unit of this.needs.units) {
      if (this.store.isLoaded(unit)) continue;
      units.push(unit);
      forEachBlockOfUnit(this.file.layout, this.store.unitRows, unit, (block) => {
        if (!this.file.isPresent(block)) blocks.add(block);
      });
    }
    return { units, blocks: [...blocks] };
  }
}
