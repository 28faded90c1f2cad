// Per-worker accounting from accepted parts and the loss stream: rows, share of the last step,
// failures only while training, stragglers against the other workers' latency.

import { describe, expect, it } from 'vitest';
import { isStraggler, WorkerStats } from '../../coordinator/worker-stats.js';
import type { StepEvent } from '../../shared/events.js';

const RUN_SETTINGS = {
  data: 'd',
  rows: 1,
  features: 1,
  trainRows: 1,
  valRows: 0,
  batchSize: 1,
  lr: 1,
  l2: 0,
  seed: 1,
  shuffle: false,
  standardize: false,
  valFraction: 0,
  chunksPerBatch: 1,
  optimizer: { optimizer: 'sgd', lrSchedule: 'constant', warmupSteps: 0, lrDecayEpochs: 0, lrGamma: 1 },
  workers: 1,
};

function joined(workerId: number) {
  return { type: 'worker', event: 'joined', workerId, address: `h:${workerId}`, reason: 'handshake complete', workers: workerId, time: 0 } as const;
}

function left(workerId: number) {
  return { type: 'worker', event: 'left', workerId, address: `h:${workerId}`, reason: 'disconnected', workers: 0, time: 0 } as const;
}

function step(rows: number): StepEvent {
  return { type: 'step', step: 0, epoch: 0, loss: 0.5, rows, workers: 2, stepMs: 1, rowsPerSec: 1, time: 0 };
}

describe('WorkerStats', () => {
  it('counts rows per worker and each one’s share of the last step', () => {
    const stats = new WorkerStats();
    stats.handle(joined(1));
    stats.handle(joined(2));
    stats.partAccepted(1, 30);
    stats.partAccepted(2, 10);
    stats.handle(step(40));
    const [one, two] = stats.snapshot();
    expect(one).toMatchObject({ workerId: 1, rows: 30, share: 0.75, connected: true, failures: 0 });
    expect(two).toMatchObject({ workerId: 2, rows: 10, share: 0.25 });
    expect(one?.lastSeen).toEqual(expect.any(Number));
  });

  it('counts a departure as a failure only while the run is training', () => {
    const stats = new WorkerStats();
    stats.handle(joined(1));
    stats.handle(joined(2));
    stats.handle({ type: 'run', event: 'start', totalSteps: 1, firstStep: 0, epochs: 1, stepsPerEpoch: 1, config: RUN_SETTINGS, time: 0 });
    stats.handle(left(1));
    stats.handle({ type: 'run', event: 'end', outcome: 'finished', steps: 1, reason: null, time: 0 });
    stats.handle(left(2));
    const failures = new Map<number, number>();
    stats.forEach((workerId, _rows, count) => {
      failures.set(workerId, count);
    });
    expect(failures).toEqual(
      new Map([
        [1, 1],
        [2, 0],
      ]),
    );
  });

  it('ignores parts from workers it never saw join', () => {
    const stats = new WorkerStats();
    stats.partAccepted(9, 100);
    expect(stats.snapshot()).toEqual([]);
  });

  it('flags a straggler against the median of the others, never for sub-millisecond jitter', () => {
    expect(isStraggler(10, [1, 1.2, 50])).toBe(true); // median of the others 1.2
    expect(isStraggler(1.4, [1, 1.2])).toBe(false); // 1.5× the median, but only 0.3 ms more
    expect(isStraggler(3, [2, 2])).toBe(false); // 1.5× exactly: not above
    expect(isStraggler(100, [])).toBe(false); // alone: nobody to lag behind
  });
});
