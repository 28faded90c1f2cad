// The scale bench's arithmetic (bench/scale-stats.ts): rates between two /status samples,
// contributors and start-up from --metrics step events, relay grouping, medians over trials.

import { describe, expect, it } from 'vitest';
import {
  medianContributors,
  medianFields,
  parseStepEvents,
  relayCount,
  relayOfWorker,
  type StatusSample,
  startupMs,
  toStatusSample,
  windowRates,
} from '../../bench/scale-stats.js';

const sample = (atMs: number, step: number, cpuUs: number, children: [number, number, number][]): StatusSample => ({
  atMs,
  state: 'training',
  step,
  cpuUs,
  children: children.map(([id, partBytes, stepBytes]) => ({ id, partBytes, stepBytes })),
});

describe('windowRates', () => {
  it('divides CPU and bytes by the steps committed between the samples', () => {
    const first = sample(1000, 10, 5_000, [
      [1, 100, 1000],
      [2, 300, 1000],
    ]);
    const last = sample(3000, 30, 45_000, [
      [1, 2100, 3000],
      [2, 6300, 3000],
    ]);
    const rates = windowRates(first, last)!;
    expect(rates.steps).toBe(20);
    expect(rates.seconds).toBe(2);
    expect(rates.cpuUsPerStep).toBe(2000); // 40,000 µs / 20 steps
    expect(rates.upMaxBytesPerStep).toBe(300); // worker 2: 6000 B / 20
    expect(rates.upMeanBytesPerStep).toBe(200); // (100 + 300) / 2
    expect(rates.downMeanBytesPerStep).toBe(100);
    expect(rates.coordinatorBytesPerStep).toBe(100 + 300 + 100 + 100);
    expect(rates.children).toBe(2);
  });

  it('counts only the children present at both ends (one that joined or left mid-window is left out)', () => {
    const first = sample(0, 0, 0, [
      [1, 0, 0],
      [2, 0, 0],
    ]);
    const last = sample(1000, 4, 400, [
      [1, 40, 80],
      [3, 999, 999],
    ]);
    const rates = windowRates(first, last)!;
    expect(rates.children).toBe(1);
    expect(rates.upMaxBytesPerStep).toBe(10);
    expect(rates.coordinatorBytesPerStep).toBe(10 + 20);
  });

  it('gives null when no step was committed', () => {
    expect(windowRates(sample(0, 5, 0, []), sample(1000, 5, 100, []))).toBeNull();
  });
});

describe('toStatusSample', () => {
  it('reads the fields of GET /status', () => {
    const body = { state: 'training', step: 7, cpuUs: 1234, workers: [{ id: 3, address: 'x', partBytes: 10, parts: 1, stepBytes: 20 }] };
    expect(toStatusSample(body, 42)).toEqual({ atMs: 42, state: 'training', step: 7, cpuUs: 1234, children: [{ id: 3, partBytes: 10, stepBytes: 20 }] });
  });

  it('names the field a coordinator without the CPU figure lacks', () => {
    expect(() => toStatusSample({ state: 'training', step: 7, workers: [] }, 0)).toThrow(/cpuUs/);
    expect(() => toStatusSample({ state: 'training', step: 7, cpuUs: 1, workers: [{ id: 1, partBytes: 1 }] }, 0)).toThrow(/workers\[0\]\.stepBytes/);
  });
});

describe('step events', () => {
  const text = [
    '{"type":"run","event":"start","time":1}',
    '{"type":"step","step":0,"epoch":0,"loss":0.69,"rows":64,"workers":2,"stepMs":30,"rowsPerSec":1,"time":1000}',
    '{"type":"step","step":1,"epoch":0,"loss":0.6,"rows":64,"workers":4,"stepMs":2,"rowsPerSec":1,"time":1010}',
    '{"type":"eval","epoch":0,"trainLoss":0.6,"time":1011}',
    '{"type":"step","step":2,"epoch":1,"loss":0.5,"rows":64,"workers":4,"stepMs":2,"rowsPerSec":1,"time":1020}',
    '{"type":"step","step":3,"epoch":1,"loss":0.5,"rows":64,"workers":3,"stepMs":2,"rowsPerSec":1,"time":1030}',
    '{"type":"step","step":4,"epoch":1,"lo', // torn by the kill
  ].join('\n');

  it('keeps the step events and skips other events and a torn last line', () => {
    expect(parseStepEvents(text).map((event) => event.step)).toEqual([0, 1, 2, 3]);
  });

  it('takes the median contributors of the steps in the window', () => {
    const steps = parseStepEvents(text);
    expect(medianContributors(steps, 1, 4)).toBe(4); // 4, 4, 3
    expect(medianContributors(steps, 0, 2)).toBe(3); // 2, 4
    expect(medianContributors(steps, 10, 20)).toBeNaN();
  });

  it('measures start-up to the scatter of step 0 (its commit time less its step time)', () => {
    expect(startupMs(400, parseStepEvents(text))).toBe(1000 - 30 - 400);
    expect(startupMs(400, [])).toBeNaN();
  });
});

describe('relays', () => {
  it('uses ceil(W / fan-in) relays, at least one', () => {
    expect([1, 16, 17, 64].map((W) => relayCount(W, 16))).toEqual([1, 1, 2, 4]);
  });

  it('gives every relay a contiguous group, sizes within one of each other', () => {
    for (const [W, R] of [
      [64, 4],
      [10, 3],
      [2, 1],
      [5, 5],
    ] as const) {
      const groups = Array.from({ length: W }, (_, i) => relayOfWorker(i, W, R));
      const sizes = Array.from({ length: R }, (_, r) => groups.filter((g) => g === r).length);
      expect([...groups].sort((a, b) => a - b)).toEqual(groups); // contiguous, in order
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(W);
    }
  });
});

describe('medianFields', () => {
  it('takes each field’s median over trials, leaving out null and NaN', () => {
    const trials = [
      { a: 1, b: null },
      { a: 5, b: Number.NaN },
      { a: 3, b: 7 },
    ];
    expect(medianFields(trials, ['a', 'b'])).toEqual({ a: 3, b: 7 });
    expect(medianFields([{ a: null }], ['a'])).toEqual({ a: null });
  });
});
