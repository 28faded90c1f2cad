// The rows of a worker that reads a remote file: before a step or a pass runs, the blocks its rows
// lie in are fetched (only those: a worker holds its share, not the file); after a step, the
// blocks of the next step are fetched ahead, guessed from the same assignment table (assignments
// are sticky while the membership holds: coordinator/assignment.ts), so the fetch overlaps the
// wait for the next step. A wrong guess costs bytes, never a result: every step still waits for
// the blocks it needs.

import type { PassMessage } from '../shared/protocol.js';
import { BlockNeeds } from './block-needs.js';
import type { PartComputer } from './compute.js';
import type { RemoteDataFile } from './remote-data.js';

export class RemoteRows {
  readonly file: RemoteDataFile;
  private readonly computer: PartComputer;
  private readonly needs: BlockNeeds;

  constructor(file: RemoteDataFile, computer: PartComputer) {
    this.file = file;
    this.computer = computer;
    this.needs = new BlockNeeds(file.layout);
  }

  /** Blocks step `step` needs for worker `workerId` under `assign` that are not in the cache yet (usually none). */
  missingForStep(step: number, assign: Uint32Array, workerId: number): number[] {
    this.needs.begin();
    this.computer.forEachStepRows(step, assign, workerId, (order, from, to) => this.needs.addRows(order, from, to));
    return this.missing();
  }

  /** Blocks a pass message's rows need that are not in the cache yet. */
  missingForPass(message: PassMessage): number[] {
    this.needs.begin();
    this.computer.forEachPassRows(message, (order, from, to) => this.needs.addRows(order, from, to));
    return this.missing();
  }

  /** Starts fetching what step `step` + 1 needs if the table stays `assign`. */
  prefetchAfter(step: number, assign: Uint32Array, workerId: number): void {
    const missing = this.missingForStep(step + 1, assign, workerId);
    if (missing.length > 0) this.file.prefetch(missing);
  }

  /** One line on what was fetched, for the worker's log. */
  summary(): string {
    const { requests, bytesFetched, blocksFetched, blocksFromCache } = this.file.stats;
    return `fetched ${bytesFetched} bytes of the data from ${this.file.where} in ${requests} request(s): ${blocksFetched} block(s) fetched, ${blocksFromCache} found in the cache ${this.file.cachePath}`;
  }

  close(): void {
    this.file.close();
  }

  private missing(): number[] {
    const missing: number[] = [];
    for (const block of this.needs.blocks) if (!this.file.isPresent(block)) missing.push(block);
    return missing;
  }
}
