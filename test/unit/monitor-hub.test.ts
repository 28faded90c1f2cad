// The monitor fan-out, with fake transports whose buffer fill the test controls: history first,
// then live events; a monitor that is behind loses step events (and is told how many) but not
// eval, membership or run events; closing delivers what is left.

import { describe, expect, it } from 'vitest';
import { HIGH_WATER_BYTES, MonitorHub, type MonitorSink } from '../../coordinator/monitor-hub.js';
import type { MonitorMessage, StepEvent } from '../../shared/events.js';

interface FakeSink extends MonitorSink {
  buffered: number;
  readonly received: MonitorMessage[];
  isEnded: boolean;
}

function fakeSink(): FakeSink {
  const sink: FakeSink = {
    buffered: 0,
    received: [],
    isEnded: false,
    bufferedBytes: () => sink.buffered,
    write: (json) => sink.received.push(JSON.parse(json) as MonitorMessage),
    keepalive: () => undefined,
    end: async () => {
      sink.isEnded = true;
    },
  };
  return sink;
}

function step(n: number): StepEvent {
  return { type: 'step', step: n, epoch: 0, loss: 0.5, rows: 4, workers: 1, stepMs: 1, rowsPerSec: 4000, time: n };
}

const noWorkers = { workersSnapshot: () => null };

describe('MonitorHub', () => {
  it('sends a new monitor the history notice, the history, then live events', () => {
    const hub = new MonitorHub(noWorkers);
    hub.publish(step(0));
    hub.publish(step(1));
    const sink = fakeSink();
    const detach = hub.attach(sink);
    hub.publish(step(2));
    expect(sink.received).toEqual([{ type: 'history', events: 2, stepStride: 1, stepsSeen: 2, time: expect.any(Number) }, step(0), step(1), step(2)]);
    detach();
    hub.publish(step(3));
    expect(sink.received).toHaveLength(4);
    expect(hub.monitorCount).toBe(0);
  });

  it('drops step events for a monitor that is behind, keeps its other events, and reports the count once it catches up', () => {
    const hub = new MonitorHub(noWorkers);
    const slow = fakeSink();
    const fast = fakeSink();
    hub.attach(slow);
    hub.attach(fast);
    slow.buffered = HIGH_WATER_BYTES;
    for (let n = 0; n < 10; n++) hub.publish(step(n));
    hub.publish({ type: 'eval', epoch: 0, trainLoss: 0.4, trainAccuracy: 0.8, valLoss: null, valAccuracy: null, time: 10 });
    expect(slow.received.map((m) => m.type)).toEqual(['history']);
    expect(hub.droppedEvents).toBe(10);
    slow.buffered = 0;
    hub.publish(step(10));
    expect(slow.received.map((m) => m.type)).toEqual(['history', 'dropped', 'eval', 'step']);
    expect(slow.received[1]).toMatchObject({ type: 'dropped', count: 10 });
    // The fast monitor got everything.
    expect(fast.received.filter((m) => m.type === 'step')).toHaveLength(11);
    expect(fast.received.some((m) => m.type === 'dropped')).toBe(false);
  });

  it('flushes a caught-up monitor on its timer tick without waiting for the next event', () => {
    const hub = new MonitorHub(noWorkers);
    const slow = fakeSink();
    hub.attach(slow);
    slow.buffered = HIGH_WATER_BYTES;
    hub.publish(step(0));
    hub.publish({ type: 'worker', event: 'left', workerId: 3, address: 'x', reason: 'disconnected', workers: 0, time: 1 });
    slow.buffered = 0;
    hub.tick();
    expect(slow.received.map((m) => m.type)).toEqual(['history', 'dropped', 'worker']);
  });

  it('delivers the backlog and the run end on close, even to a monitor that is behind', async () => {
    const hub = new MonitorHub(noWorkers);
    const slow = fakeSink();
    hub.attach(slow);
    slow.buffered = HIGH_WATER_BYTES;
    hub.publish(step(0));
    hub.publish({ type: 'run', event: 'end', outcome: 'finished', steps: 1, reason: null, time: 2 });
    await hub.close('training finished');
    expect(slow.received.map((m) => m.type)).toEqual(['history', 'dropped', 'run']);
    expect(slow.isEnded).toBe(true);
  });

  it('queues the final workers snapshot for a monitor that is behind', () => {
    const hub = new MonitorHub({ workersSnapshot: () => ({ type: 'workers', workers: [], time: 7 }) });
    const slow = fakeSink();
    hub.attach(slow);
    slow.buffered = HIGH_WATER_BYTES;
    hub.publishWorkers();
    slow.buffered = 0;
    hub.tick();
    expect(slow.received.map((m) => m.type)).toEqual(['history', 'workers', 'workers', 'workers']);
  });

  it('sends workers snapshots on its tick only when they changed, and the latest one to a new monitor', () => {
    let version = 0;
    const hub = new MonitorHub({
      workersSnapshot: (force) => (force || version % 2 === 1 ? { type: 'workers', workers: [], time: version } : null),
    });
    const sink = fakeSink();
    hub.attach(sink);
    hub.tick();
    version = 1;
    hub.tick();
    expect(sink.received.map((m) => m.type)).toEqual(['history', 'workers', 'workers']);
  });
});
