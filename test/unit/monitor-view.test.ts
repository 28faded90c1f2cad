// dpt monitor's pieces that need no socket: the URL it connects to, the sparkline, the smoothed
// loss and throughput of the live view, and what the view shows.

import { describe, expect, it } from 'vitest';
import { monitorUrl } from '../../cli/monitor.js';
import { EMA_ALPHA, MonitorView, sparkline } from '../../cli/monitor-view.js';
import type { RunStartEvent, StepEvent } from '../../shared/events.js';

const RUN: RunStartEvent = {
  type: 'run',
  event: 'start',
  totalSteps: 100,
  firstStep: 0,
  epochs: 10,
  stepsPerEpoch: 10,
  config: {
    data: 'd.csv',
    rows: 80,
    features: 3,
    trainRows: 80,
    valRows: 0,
    batchSize: 8,
    lr: 0.1,
    l2: 0,
    seed: 1,
    shuffle: true,
    standardize: true,
    valFraction: 0,
    chunksPerBatch: 4,
    optimizer: { optimizer: 'sgd', lrSchedule: 'constant', warmupSteps: 0, lrDecayEpochs: 0, lrGamma: 1 },
    workers: 2,
  },
  time: 1_000_000,
};

function step(n: number, loss: number, time: number): StepEvent {
  return { type: 'step', step: n, epoch: Math.floor(n / 10), loss, rows: 8, workers: 2, stepMs: 1, rowsPerSec: 8000, time };
}

describe('monitorUrl', () => {
  it.each([
    ['http://host:8787', 'ws://host:8787/monitor'],
    ['https://host:8787/', 'wss://host:8787/monitor'],
    ['ws://host:8787', 'ws://host:8787/monitor'],
    ['wss://host/dpt/', 'wss://host/dpt/monitor'],
    ['http://host:8787/monitor?token=t', 'ws://host:8787/monitor?token=t'],
  ])('turns %s into %s', (input, expected) => {
    expect(monitorUrl(input)).toBe(expected);
  });

  it('rejects other schemes and non-URLs with a config error', () => {
    expect(() => monitorUrl('ftp://host')).toThrow(/expected http:\/\/, https:\/\/, ws:\/\/ or wss:\/\//);
    expect(() => monitorUrl('host:8787')).toThrow(/expected http:\/\//);
    expect(() => monitorUrl('not a url')).toThrow(/not a valid URL/);
  });
});

describe('sparkline', () => {
  it('maps the lowest mean to ▁ and the highest to █', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8)).toBe('▁▂▃▄▅▆▇█');
  });

  it('averages the values that share a column', () => {
    // Columns: mean(4, 4) = 4, mean(0, 0) = 0.
    expect(sparkline([4, 4, 0, 0], 2)).toBe('█▁');
  });

  it('draws a flat series at the bottom and leaves non-finite columns blank', () => {
    expect(sparkline([1, 1, 1], 3)).toBe('▁▁▁');
    expect(sparkline([1, Number.NaN, 2], 3)).toBe('▁ █');
    expect(sparkline([], 5)).toBe('');
  });
});

describe('MonitorView', () => {
  it('smooths the loss as an exponential moving average', () => {
    const view = new MonitorView('ws://x/monitor');
    view.handle(step(0, 1, 0));
    view.handle(step(1, 0, 10));
    expect(view.smoothedLoss).toBeCloseTo(1 - EMA_ALPHA, 12);
  });

  it('measures steps and rows per second from the events’ times, a sampled history included', () => {
    const view = new MonitorView('ws://x/monitor');
    for (let n = 0; n <= 10; n++) view.handle(step(n, 0.5, 1_000_000 + n * 100)); // 10 steps/s of 8 rows
    expect(view.stepsPerSec).toBeCloseTo(10, 9);
    expect(view.rowsPerSec).toBeCloseTo(80, 9);
    const sampled = new MonitorView('ws://x/monitor');
    for (let n = 0; n <= 10; n++) sampled.handle(step(4 * n, 0.5, 1_000_000 + n * 400)); // every 4th step kept
    expect(sampled.stepsPerSec).toBeCloseTo(10, 9);
    expect(sampled.rowsPerSec).toBeCloseTo(80, 9);
  });

  it('shows step, epoch, loss, throughput, ETA and each worker, within the width', () => {
    const view = new MonitorView('ws://x/monitor');
    view.handle(RUN);
    for (let n = 0; n < 50; n++) view.handle(step(n, 1 / (n + 1), 1_000_000 + n * 100));
    view.handle({
      type: 'workers',
      workers: [
        {
          workerId: 1,
          address: '10.0.0.1:5000',
          connected: true,
          rows: 200,
          rowsPerSec: 40,
          share: 0.5,
          latencyMs: 1,
          straggler: false,
          lastSeen: 1_004_900,
          failures: 0,
          kernel: 'native avx512f',
        },
        {
          workerId: 2,
          address: '10.0.0.2:5000',
          connected: true,
          rows: 200,
          rowsPerSec: 40,
          share: 0.5,
          latencyMs: 9,
          straggler: true,
          lastSeen: 1_004_900,
          failures: 0,
          kernel: null,
        },
      ],
      time: 1_004_900,
    });
    const lines = view.render(1_005_000, 100);
    const text = lines.join('\n');
    expect(text).toMatch(/step 50\/100 \(50\.0%\)\s+epoch 5\/10/);
    expect(text).toMatch(/ETA 5s/); // 50 steps left at 10 steps/s
    expect(text).toMatch(/loss 0\.0200/);
    expect(text).toMatch(/rows\/s 80 {2}steps\/s 10/);
    expect(text).toMatch(/10\.0\.0\.2:5000 .* – +0\.1s ago {2}straggler/);
    expect(text).toMatch(/10\.0\.0\.1:5000 .* native avx512f +0\.1s ago$/m);
    expect(lines.every((line) => line.length <= 100)).toBe(true);
  });

  it('starts afresh when a new session begins (history notice)', () => {
    const view = new MonitorView('ws://x/monitor');
    view.handle(RUN);
    view.handle(step(0, 0.7, 0));
    view.handle({ type: 'history', events: 0, stepStride: 1, stepsSeen: 0, time: 0 });
    expect(view.render(0, 80).join('\n')).toMatch(/waiting for the run to start/);
    expect(Number.isNaN(view.smoothedLoss)).toBe(true);
  });
});

describe('the view of a softmax run (issue #12)', () => {
  it('names the model and its class count, and shows train and validation accuracy', () => {
    const view = new MonitorView('ws://x/monitor');
    view.handle({ ...RUN, config: { ...RUN.config, model: { kind: 'softmax', classCount: 10, classes: ['eight', 'five'] } } });
    view.handle(step(9, 0.5, 1_000_000));
    view.handle({ type: 'eval', epoch: 0, trainLoss: 0.5, trainAccuracy: 0.875, valLoss: 0.625, valAccuracy: 0.75, time: 1_000_001 });
    const lines = view.render(1_000_002, 120).join('\n');
    expect(lines).toMatch(/softmax, 10 classes/);
    expect(lines).toMatch(/train 0\.5000 \(acc 0\.8750\)\s+val 0\.6250 \(acc 0\.7500\)/);
    const logistic = new MonitorView('ws://x/monitor');
    logistic.handle(RUN);
    logistic.handle(step(9, 0.5, 1_000_000));
    expect(logistic.render(1_000_002, 120).join('\n')).not.toMatch(/softmax/);
  });
});
