// The bounded history late monitors receive: every non-step event, a step sample whose stride
// doubles when full, the newest step always included, everything in stream order.

import { describe, expect, it } from 'vitest';
import { EventHistory, MAX_OTHER_EVENTS } from '../../coordinator/event-history.js';
import type { EvalEvent, StepEvent, StreamEvent } from '../../shared/events.js';

function step(n: number): StepEvent {
  return { type: 'step', step: n, epoch: Math.floor(n / 10), loss: 1 / (n + 1), rows: 8, workers: 1, stepMs: 1, rowsPerSec: 8000, time: n };
}

function evaluation(epoch: number): EvalEvent {
  return { type: 'eval', epoch, trainLoss: 0.5, trainAccuracy: 0.9, valLoss: null, valAccuracy: null, time: epoch };
}

function replayed(history: EventHistory): StreamEvent[] {
  const events: StreamEvent[] = [];
  history.replay((event) => events.push(event));
  return events;
}

describe('EventHistory', () => {
  it('keeps every step while the sample has room', () => {
    const history = new EventHistory(8);
    for (let n = 0; n < 8; n++) history.add(step(n));
    expect(replayed(history).map((e) => (e.type === 'step' ? e.step : -1))).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(history.stepStride).toBe(1);
    expect(history.size).toBe(8);
  });

  it('halves the sample and doubles the stride when full, keeping steps 0, k, 2k, … and the newest step', () => {
    const history = new EventHistory(8);
    for (let n = 0; n < 1000; n++) history.add(step(n));
    const steps = replayed(history).map((e) => (e.type === 'step' ? e.step : -1));
    // 1000 steps into 8 slots: stride 128 keeps 0, 128, …, 896 (8 samples), plus the newest, 999.
    expect(history.stepStride).toBe(128);
    expect(steps).toEqual([0, 128, 256, 384, 512, 640, 768, 896, 999]);
    expect(history.size).toBe(steps.length);
    expect(history.stepCount).toBe(1000);
  });

  it('keeps every eval and membership event, merged with the sample in stream order', () => {
    const history = new EventHistory(4);
    const added: StreamEvent[] = [];
    const add = (event: StreamEvent): void => {
      added.push(event);
      history.add(event);
    };
    add({ type: 'worker', event: 'joined', workerId: 1, address: 'a', reason: 'handshake complete', workers: 1, time: 0 });
    for (let n = 0; n < 40; n++) {
      add(step(n));
      if (n % 10 === 9) add(evaluation(Math.floor(n / 10)));
    }
    const events = replayed(history);
    expect(events.filter((e) => e.type !== 'step')).toEqual(added.filter((e) => e.type !== 'step'));
    // Stream order: each event's position in `added` increases along the replay.
    const positions = events.map((e) => added.indexOf(e));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(events.at(-1)).toEqual(evaluation(3));
  });

  it('rejects a sample size that cannot be halved', () => {
    expect(() => new EventHistory(7)).toThrow(/even integer/);
  });

  it('bounds the other events: past the cap the oldest tenth goes, run events stay', () => {
    const history = new EventHistory(4);
    history.add({ type: 'run', event: 'end', outcome: 'finished', steps: 0, reason: null, time: 0 });
    for (let epoch = 0; epoch < 2 * MAX_OTHER_EVENTS; epoch++) history.add(evaluation(epoch));
    const events = replayed(history);
    expect(events.length).toBeLessThanOrEqual(MAX_OTHER_EVENTS + 1);
    expect(events[0]).toMatchObject({ type: 'run' });
    expect(events.at(-1)).toEqual(evaluation(2 * MAX_OTHER_EVENTS - 1));
  });

  it('gives a snapshot equal to the replay, unchanged by later events', () => {
    const history = new EventHistory(4);
    for (let n = 0; n < 10; n++) history.add(step(n));
    const snapshot = history.snapshot();
    expect(snapshot).toEqual(replayed(history));
    for (let n = 10; n < 100; n++) history.add(step(n));
    expect(snapshot.map((e) => (e.type === 'step' ? e.step : -1))).toEqual([0, 4, 8, 9]);
  });
});
