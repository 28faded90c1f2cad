// The monitor fan-out, with fake transports whose buffer fill the test controls: history first,
// then live events; a monitor that is behind loses step events (and is told how many) but not
// eval, membership or run events; closing delivers what is left. Publishing only queues: the
// fan-out runs a batch later; a late joiner's history goes out as its buffer drains; monitors
// past --max-monitors get HTTP 503 (real sockets on 127.0.0.1).

import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HIGH_WATER_BYTES, MonitorHub, type MonitorSink } from '../../coordinator/monitor-hub.js';
import type { EvalEvent, MonitorMessage, StepEvent } from '../../shared/events.js';
import { upgradeStatus } from '../helpers/monitor.js';

interface FakeSink extends MonitorSink {
  buffered: number;
  readonly received: MonitorMessage[];
  isEnded: boolean;
  /** When true, every write adds its bytes to `buffered` (a peer that does not read). */
  isCountingBytes: boolean;
  /** The peer took everything: `buffered` is 0 again and the drain callbacks run. */
  drain(): void;
}

function fakeSink(): FakeSink {
  let drainCallbacks: (() => void)[] = [];
  const sink: FakeSink = {
    buffered: 0,
    received: [],
    isEnded: false,
    isCountingBytes: false,
    bufferedBytes: () => sink.buffered,
    write: (json) => {
      sink.received.push(JSON.parse(json) as MonitorMessage);
      if (sink.isCountingBytes) sink.buffered += Buffer.byteLength(json);
    },
    keepalive: () => undefined,
    onDrain: (callback) => {
      drainCallbacks.push(callback);
    },
    writeBatch: (batch) => {
      for (const json of batch.jsons) sink.write(json);
    },
    end: async () => {
      sink.isEnded = true;
    },
    drain: () => {
      sink.buffered = 0;
      const callbacks = drainCallbacks;
      drainCallbacks = [];
      for (const callback of callbacks) callback();
    },
  };
  return sink;
}

function step(n: number): StepEvent {
  return { type: 'step', step: n, epoch: 0, loss: 0.5, rows: 4, workers: 1, stepMs: 1, rowsPerSec: 4000, time: n };
}

function evaluation(epoch: number): EvalEvent {
  return { type: 'eval', epoch, trainLoss: 0.4, trainAccuracy: 0.8, valLoss: null, valAccuracy: null, time: epoch };
}

/**
 * Resolves after the fan-out batch queued by the publishes before it: the hubs below batch with
 * a 0 ms timer, and Node runs timers of the same delay in the order they were set.
 */
const fannedOut = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

const noWorkers = { workersSnapshot: () => null, fanOutMs: 0 };

describe('MonitorHub', () => {
  it('sends a new monitor the history notice, the history, then live events', async () => {
    const hub = new MonitorHub(noWorkers);
    hub.publish(step(0));
    hub.publish(step(1));
    const sink = fakeSink();
    const detach = hub.attach(sink);
    hub.publish(step(2));
    await fannedOut();
    expect(sink.received).toEqual([{ type: 'history', events: 2, stepStride: 1, stepsSeen: 2, time: expect.any(Number) }, step(0), step(1), step(2)]);
    detach();
    hub.publish(step(3));
    expect(sink.received).toHaveLength(4);
    expect(hub.monitorCount).toBe(0);
  });

  it('drops step events for a monitor that is behind, keeps its other events, and reports the count once it catches up', async () => {
    const hub = new MonitorHub(noWorkers);
    const slow = fakeSink();
    const fast = fakeSink();
    hub.attach(slow);
    hub.attach(fast);
    slow.buffered = HIGH_WATER_BYTES;
    for (let n = 0; n < 10; n++) hub.publish(step(n));
    hub.publish({ type: 'eval', epoch: 0, trainLoss: 0.4, trainAccuracy: 0.8, valLoss: null, valAccuracy: null, time: 10 });
    await fannedOut();
    expect(slow.received.map((m) => m.type)).toEqual(['history']);
    expect(hub.droppedEvents).toBe(10);
    slow.buffered = 0;
    hub.publish(step(10));
    await fannedOut();
    expect(slow.received.map((m) => m.type)).toEqual(['history', 'dropped', 'eval', 'step']);
    expect(slow.received[1]).toMatchObject({ type: 'dropped', count: 10 });
    // The fast monitor got everything.
    expect(fast.received.filter((m) => m.type === 'step')).toHaveLength(11);
    expect(fast.received.some((m) => m.type === 'dropped')).toBe(false);
  });

  it('flushes a caught-up monitor on its timer tick without waiting for the next event', async () => {
    const hub = new MonitorHub(noWorkers);
    const slow = fakeSink();
    hub.attach(slow);
    slow.buffered = HIGH_WATER_BYTES;
    hub.publish(step(0));
    hub.publish({ type: 'worker', event: 'left', workerId: 3, address: 'x', reason: 'disconnected', workers: 0, time: 1 });
    await fannedOut();
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
    const hub = new MonitorHub({ workersSnapshot: () => ({ type: 'workers', workers: [], time: 7 }), fanOutMs: 0 });
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

  it('returns from publish before any monitor is written to, then sends the batch to every monitor in one write, serialized once', async () => {
    const hub = new MonitorHub(noWorkers);
    const sinks = [fakeSink(), fakeSink(), fakeSink()];
    let batchWrites = 0;
    for (const sink of sinks) {
      const writeBatch = sink.writeBatch;
      sink.writeBatch = (batch) => {
        batchWrites++;
        writeBatch(batch);
      };
      hub.attach(sink);
    }
    const stringify = vi.spyOn(JSON, 'stringify');
    try {
      for (let n = 0; n < 5; n++) hub.publish(step(n));
      // The trainer's part: a queue push each; nothing serialized, nothing written yet.
      expect(stringify).not.toHaveBeenCalled();
      for (const sink of sinks) expect(sink.received.map((m) => m.type)).toEqual(['history']);
      await fannedOut();
      expect(stringify).toHaveBeenCalledTimes(5);
      expect(batchWrites).toBe(3);
    } finally {
      stringify.mockRestore();
    }
    for (const sink of sinks) expect(sink.received.slice(1)).toEqual([0, 1, 2, 3, 4].map(step));
  });

  it('sends a late joiner its history through its bounded buffer, as the buffer drains, then live events', async () => {
    const hub = new MonitorHub(noWorkers);
    const published: (StepEvent | EvalEvent)[] = [];
    for (let n = 0; n < 6000; n++) {
      const event = n % 2 === 0 ? step(n) : evaluation(n);
      published.push(event);
      hub.publish(event);
    }
    const late = fakeSink();
    late.isCountingBytes = true; // a peer that reads nothing until told
    hub.attach(late);
    const maxMessageBytes = Math.max(...published.map((event) => Buffer.byteLength(JSON.stringify(event))));
    const notice = late.received[0];
    expect(notice).toMatchObject({ type: 'history', events: 6000 });
    // At no point more than the high-water mark plus one message waits for this monitor.
    expect(late.buffered).toBeLessThanOrEqual(HIGH_WATER_BYTES + maxMessageBytes);
    expect(late.received.length).toBeLessThan(6001);
    hub.publish(step(6000)); // live, while the history is still going out: sent after it (the history's stride is 1)
    hub.publish(evaluation(6001)); // kept for after the history
    await fannedOut();
    let drains = 0;
    while (late.received.filter((m) => m.type !== 'history').length < 6000) {
      expect(late.buffered).toBeLessThanOrEqual(HIGH_WATER_BYTES + maxMessageBytes);
      late.drain();
      if (++drains > 100) throw new Error('the history never finished');
    }
    late.drain();
    expect(drains).toBeGreaterThan(1);
    expect(late.received.slice(1, 6001)).toEqual(published);
    // Issue 14: nothing is reported skipped (the page did not fall behind, it was catching up).
    expect(late.received.slice(6001)).toEqual([step(6000), evaluation(6001)]);
    expect(hub.droppedEvents).toBe(0);
    // Caught up: live events go straight out again.
    hub.publish(step(6002));
    await fannedOut();
    expect(late.received.at(-1)).toEqual(step(6002));
  });

  it("samples live steps that arrive during a late joiner's history at the history's stride, keeps the newest, and reports nothing skipped", async () => {
    const hub = new MonitorHub(noWorkers);
    // 10,000 steps: the 4096-step sample halved twice, every 4th step (indices 0, 4, 8, …) kept.
    for (let n = 0; n < 10_000; n++) hub.publish(step(n));
    await fannedOut();
    const late = fakeSink();
    late.isCountingBytes = true;
    hub.attach(late);
    const notice = late.received[0];
    expect(notice).toMatchObject({ type: 'history', stepStride: 4, stepsSeen: 10_000 });
    const historyEvents = (notice as { events: number }).events;
    expect(late.received.length).toBeLessThan(1 + historyEvents); // the history is still going out
    // Live steps 10,000 … 10,010 with an eval after step 10,005, then 10,006 … 10,010.
    for (let n = 10_000; n <= 10_005; n++) hub.publish(step(n));
    hub.publish(evaluation(1));
    for (let n = 10_006; n <= 10_010; n++) hub.publish(step(n));
    await fannedOut();
    for (let drains = 0; late.received.length < 1 + historyEvents; drains++) {
      late.drain();
      if (drains > 100) throw new Error('the history never finished');
    }
    late.drain();
    const live = late.received.slice(1 + historyEvents);
    // On the grid (10,000, 10,004, 10,008), the newest off-grid step before the eval (10,005), the eval, and the newest step (10,010).
    expect(live).toEqual([step(10_000), step(10_004), step(10_005), evaluation(1), step(10_008), step(10_010)]);
    expect(live.some((m) => m.type === 'dropped')).toBe(false);
    expect(hub.droppedEvents).toBe(0);
    // Caught up: every live step goes out again.
    hub.publish(step(10_011));
    await fannedOut();
    expect(late.received.at(-1)).toEqual(step(10_011));
  });

  it('gives the dashboard page what a new monitor is sent first, as JSON that cannot close its script element', () => {
    const hub = new MonitorHub({ workersSnapshot: () => ({ type: 'workers', workers: [], time: 9 }), fanOutMs: 0 });
    const reason = '</script><script>alert(1)</script>';
    hub.publish(step(0));
    hub.publish({ type: 'run', event: 'end', outcome: 'failed', steps: 1, reason, time: 2 });
    const json = hub.snapshotJson();
    expect(json).not.toContain('<');
    expect(JSON.parse(json)).toEqual([
      { type: 'history', events: 2, stepStride: 1, stepsSeen: 1, time: expect.any(Number) },
      step(0),
      { type: 'run', event: 'end', outcome: 'failed', steps: 1, reason, time: 2 },
      { type: 'workers', workers: [], time: 9 },
    ]);
  });

  it('forgets a monitor that leaves while its history is still going out', () => {
    const hub = new MonitorHub(noWorkers);
    for (let n = 0; n < 5000; n++) hub.publish(step(n));
    const late = fakeSink();
    late.isCountingBytes = true;
    const detach = hub.attach(late);
    const received = late.received.length;
    detach();
    late.drain();
    expect(late.received).toHaveLength(received);
    expect(hub.monitorCount).toBe(0);
  });
});

describe('MonitorHub on real sockets', () => {
  let server: Server | null = null;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
    server = null;
  });

  /** Serves the hub's SSE at /events and its WebSocket at /monitor on 127.0.0.1 (port 0). */
  async function serve(hub: MonitorHub): Promise<number> {
    const http = createServer((_request, response) => hub.acceptEventStream(response));
    http.on('upgrade', (request, socket, head) => hub.acceptWebSocket(request, socket, head));
    server = http;
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    return (http.address() as AddressInfo).port;
  }

  /** Opens an SSE stream; resolves with its status once the head arrived (and a way to close it). */
  function openStream(port: number): Promise<{ status: number; close: () => void }> {
    return new Promise((resolve, reject) => {
      const request = get(`http://127.0.0.1:${port}/events`, (response) => {
        response.resume();
        resolve({ status: response.statusCode ?? 0, close: () => request.destroy() });
      });
      request.on('error', reject);
    });
  }

  it('refuses monitors past --max-monitors with HTTP 503 and lets the connected ones stream on', async () => {
    const hub = new MonitorHub({ ...noWorkers, maxMonitors: 2 });
    const port = await serve(hub);
    const first = await openStream(port);
    const second = await openStream(port);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(hub.monitorCount).toBe(2);
    expect((await openStream(port)).status).toBe(503);
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/monitor`)).toBe(503);
    expect(hub.refusedMonitors).toBe(2);
    expect(hub.monitorCount).toBe(2);
    // A slot that comes free is taken by the next monitor.
    first.close();
    for (let i = 0; hub.monitorCount > 1; i++) {
      if (i > 1000) throw new Error('the closed stream was never detached');
      await fannedOut();
    }
    expect(await upgradeStatus(`ws://127.0.0.1:${port}/monitor`)).toBe(101);
    second.close();
    await hub.close('done');
  });
});
