// Fans the loss stream out to monitors, read-only, over WebSocket (/monitor) and Server-Sent
// Events (/events): each monitor first gets the bounded history, then live events. A monitor
// that falls behind never slows training: its step events are dropped (it is told how many when
// it catches up), its other events wait in a small bounded backlog, and per-worker snapshots are
// coalesced. With no monitor connected, publishing an event only appends it to the history.
// Authentication is the caller's job (coordinator/monitoring.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { DroppedNotice, HistoryNotice, StreamEvent, WorkersEvent } from '../shared/events.js';
import { EventHistory } from './event-history.js';

/** A monitor with more than this many bytes queued is behind: its step events are dropped. */
export const HIGH_WATER_BYTES = 256 * 1024;
/** Eval, membership and run events kept for a monitor that is behind; past it they are dropped too. */
const MAX_BACKLOG = 1000;
/** Period of backlog flushing and per-worker snapshots while monitors are connected, ms. */
const TICK_MS = 250;
/** Every this many ticks: a WebSocket ping (a monitor that missed the previous pong is cut) and an SSE comment. */
const KEEPALIVE_TICKS = 60;
/** How long closing waits for a monitor to take its last events before cutting it, ms. */
const CLOSE_GRACE_MS = 2000;
/** Monitors send nothing; this bounds what a misbehaving one can make us read. */
const MAX_MONITOR_FRAME_BYTES = 1024;

/** One connected monitor's transport (a WebSocket, an SSE response, or a test's fake). */
export interface MonitorSink {
  /** Bytes queued and not yet taken by the peer's socket. */
  bufferedBytes(): number;
  /** Sends one JSON message. */
  write(json: string): void;
  keepalive(): void;
  /** Closes after what is queued has gone; resolves once closed (or cut after the grace period). */
  end(reason: string): Promise<void>;
}

interface Monitor {
  readonly sink: MonitorSink;
  /** Eval, membership and run events not yet sent because the monitor was behind. */
  readonly backlog: string[];
  /** Events not sent since the last dropped notice. */
  dropped: number;
}

/** What the workers' snapshot and the history need from outside. */
export interface MonitorHubOptions {
  /** Per-worker summary for a `workers` message; null when nothing changed since the last one, unless forced. */
  readonly workersSnapshot: (force: boolean) => WorkersEvent | null;
  readonly maxStepEvents?: number;
}

export class MonitorHub {
  private readonly options: MonitorHubOptions;
  private readonly history: EventHistory;
  private readonly monitors: Monitor[] = [];
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_MONITOR_FRAME_BYTES });
  private ticker: NodeJS.Timeout | null = null;
  private ticks = 0;
  private lastWorkers: string | null = null;
  private droppedTotal = 0;
  private isClosed = false;

  constructor(options: MonitorHubOptions) {
    this.options = options;
    this.history = new EventHistory(options.maxStepEvents);
  }

  /** Monitors connected now. */
  get monitorCount(): number {
    return this.monitors.length;
  }

  /** Events not delivered to some monitor because it was behind, over the run. */
  get droppedEvents(): number {
    return this.droppedTotal;
  }

  /** Records an event and sends it to every monitor. Allocation-free while none is connected. */
  publish(event: StreamEvent): void {
    this.history.add(event);
    if (this.monitors.length === 0) return;
    const json = JSON.stringify(event);
    const isDroppable = event.type === 'step';
    for (let i = 0; i < this.monitors.length; i++) this.deliver(this.monitors[i]!, json, isDroppable); // i < length
  }

  /** Sends every monitor a fresh workers snapshot now, queued for one that is behind (the run's final figures). */
  publishWorkers(): void {
    const workers = this.options.workersSnapshot(true);
    if (workers === null) return;
    const json = JSON.stringify(workers);
    this.lastWorkers = json;
    for (let i = 0; i < this.monitors.length; i++) this.deliver(this.monitors[i]!, json, false); // i < length
  }

  /** Takes over an authenticated upgrade to /monitor. */
  acceptWebSocket(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      if (this.isClosed) {
        ws.close(1001, 'the run is over');
        return;
      }
      const detach = this.attach(webSocketSink(ws));
      ws.on('close', detach);
      ws.on('error', detach);
    });
  }

  /** Takes over an authenticated GET /events as a Server-Sent Events stream. */
  acceptEventStream(response: ServerResponse): void {
    if (this.isClosed) {
      response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('the run is over\n');
      return;
    }
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    // `retry` tells an EventSource how long to wait before reconnecting, ms.
    response.write('retry: 2000\n\n');
    const detach = this.attach(eventStreamSink(response));
    // The response's 'close' (not the request's, which ends with its empty body) is the connection going away.
    response.on('close', detach);
    response.on('error', detach);
  }

  /** Sends what each monitor still has queued, closes every monitor (bounded), and refuses new ones. */
  async close(reason: string): Promise<void> {
    this.isClosed = true;
    this.stopTicker();
    const monitors = this.monitors.splice(0);
    await Promise.all(
      monitors.map((monitor) => {
        // The last events (the run's end among them) go out whatever the monitor's buffer holds: the backlog is bounded.
        this.sendDroppedNotice(monitor);
        for (const json of monitor.backlog.splice(0)) monitor.sink.write(json);
        return monitor.sink.end(reason);
      }),
    );
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  /** Sends the history to a new monitor and adds it to the live fan-out; returns what removes it (call it when its transport closes). */
  attach(sink: MonitorSink): () => void {
    const monitor: Monitor = { sink, backlog: [], dropped: 0 };
    const notice: HistoryNotice = {
      type: 'history',
      events: this.history.size,
      stepStride: this.history.stepStride,
      stepsSeen: this.history.stepCount,
      time: Date.now(),
    };
    sink.write(JSON.stringify(notice));
    this.history.replay((event) => sink.write(JSON.stringify(event)));
    const workers = this.options.workersSnapshot(true);
    if (workers !== null) this.lastWorkers = JSON.stringify(workers);
    if (this.lastWorkers !== null) sink.write(this.lastWorkers);
    this.monitors.push(monitor);
    if (this.ticker === null) {
      this.ticker = setInterval(() => this.tick(), TICK_MS);
      this.ticker.unref();
    }
    return () => {
      const index = this.monitors.indexOf(monitor);
      if (index < 0) return;
      this.monitors.splice(index, 1);
      if (this.monitors.length === 0) this.stopTicker();
    };
  }

  private deliver(monitor: Monitor, json: string, isDroppable: boolean): void {
    if (monitor.dropped > 0 || monitor.backlog.length > 0) this.flush(monitor);
    const isBehind = monitor.dropped > 0 || monitor.backlog.length > 0 || monitor.sink.bufferedBytes() >= HIGH_WATER_BYTES;
    if (!isBehind) monitor.sink.write(json);
    else if (isDroppable || monitor.backlog.length >= MAX_BACKLOG) this.countDropped(monitor);
    else monitor.backlog.push(json);
  }

  /** Sends the dropped notice and the backlog as far as the monitor's buffer allows. */
  private flush(monitor: Monitor): void {
    if (monitor.sink.bufferedBytes() >= HIGH_WATER_BYTES) return;
    this.sendDroppedNotice(monitor);
    while (monitor.backlog.length > 0 && monitor.sink.bufferedBytes() < HIGH_WATER_BYTES) {
      monitor.sink.write(monitor.backlog.shift()!); // length > 0
    }
  }

  private sendDroppedNotice(monitor: Monitor): void {
    if (monitor.dropped === 0) return;
    const notice: DroppedNotice = { type: 'dropped', count: monitor.dropped, time: Date.now() };
    monitor.sink.write(JSON.stringify(notice));
    monitor.dropped = 0;
  }

  private countDropped(monitor: Monitor): void {
    monitor.dropped++;
    this.droppedTotal++;
  }

  /** Flushes what monitors that caught up still have pending, sends a fresh workers snapshot, keeps connections alive. Runs every TICK_MS while monitors are connected. */
  tick(): void {
    this.ticks++;
    const isKeepalive = this.ticks % KEEPALIVE_TICKS === 0;
    const workers = this.options.workersSnapshot(false);
    const json = workers === null ? null : JSON.stringify(workers);
    if (json !== null) this.lastWorkers = json;
    for (const monitor of [...this.monitors]) {
      this.flush(monitor);
      if (isKeepalive) monitor.sink.keepalive();
      // A snapshot supersedes the previous one: a monitor that is behind skips it (coalesced, not counted).
      if (json !== null && monitor.dropped === 0 && monitor.backlog.length === 0 && monitor.sink.bufferedBytes() < HIGH_WATER_BYTES) monitor.sink.write(json);
    }
  }

  private stopTicker(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
  }
}

function webSocketSink(ws: WebSocket): MonitorSink {
  let isAwaitingPong = false;
  ws.on('pong', () => {
    isAwaitingPong = false;
  });
  // Monitors are read-only: anything they send is ignored.
  ws.on('message', () => undefined);
  return {
    bufferedBytes: () => ws.bufferedAmount,
    write: (json) => {
      if (ws.readyState === ws.OPEN) ws.send(json);
    },
    keepalive: () => {
      if (isAwaitingPong) {
        ws.terminate();
        return;
      }
      isAwaitingPong = true;
      if (ws.readyState === ws.OPEN) ws.ping();
    },
    end: (reason) =>
      new Promise<void>((resolve) => {
        if (ws.readyState === ws.CLOSED) return resolve();
        const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
        timer.unref();
        ws.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        ws.close(1000, reason.slice(0, 120));
      }),
  };
}

function eventStreamSink(response: ServerResponse): MonitorSink {
  return {
    bufferedBytes: () => response.writableLength,
    write: (json) => {
      if (!response.writableEnded && !response.destroyed) response.write(`data: ${json}\n\n`);
    },
    keepalive: () => {
      if (!response.writableEnded && !response.destroyed) response.write(': keepalive\n\n');
    },
    end: () =>
      new Promise<void>((resolve) => {
        if (response.writableEnded || response.destroyed) return resolve();
        const timer = setTimeout(() => {
          response.destroy();
          resolve();
        }, CLOSE_GRACE_MS);
        timer.unref();
        response.end(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
