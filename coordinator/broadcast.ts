// One step message for all the workers a step (or a share of it) was assigned to: the table of
// every worker's ranges and θ, encoded once; the same bytes go to each (issue #11 item 2). Used by
// the coordinator's trainer and by a relay forwarding its share to its group.

import { encodeMessage } from '../shared/protocol.js';
import { contiguousRuns } from './assignment.js';
import type { Assignment } from './scatter.js';

/**
 * Encodes step `step` with parameters θ for `assignments`, and writes it to each of their workers.
 * A sparse run (issue #13) sends an empty θ and the params `version` its replicas hold.
 */
export function broadcastStep(step: number, assignments: readonly Assignment[], theta: Float64Array, version?: number): void {
  // (worker id, first chunk, end) per contiguous run, ordered by first chunk: runs never overlap
  // (each chunk has one owner, or one backup, per send).
  const table: [number, number, number][] = [];
  for (const { worker, units } of assignments) {
    const runs = contiguousRuns(units);
    for (let r = 0; r < runs.length; r += 2) table.push([worker.id, runs[r]!, runs[r + 1]!]);
  }
  table.sort((first, second) => first[1] - second[1]);
  const bytes = encodeMessage({ kind: 'step', step, assign: Uint32Array.from(table.flat()), theta, ...(version === undefined ? {} : { version }) });
  for (const { worker } of assignments) {
    worker.stepBytes += bytes.length;
    worker.sendBytes(bytes);
  }
}
