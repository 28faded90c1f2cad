// Fans the loss stream out to monitors, read-only, over WebSocket (/monitor) and Server-Sent
// Events (/events): each monitor first gets the bounded history, then live events. At most
// --max-monitors are connected; more are refused with HTTP 503 (issue 10, item 4). Every byte a
// monitor is sent goes through one bounded buffer per monitor: the history of a late joiner is
// paced by its socket draining (never one huge write); a monitor that falls behind never slows
// training: its step events are dropped (it is told how many when it catches up), its other
// events wait in a small bounded backlog, and per-worker snapshots are coalesced. Live steps that
// arrive while a new monitor's history is still going out are not "falling behind": they are
// sampled at the history's stride and sent after it, the newest always (issue 14: a freshly
// opened dashboard reported "1 events skipped"). Publishing
// costs the trainer O(1) per event: the event is queued; every FAN_OUT_MS the queued events are
// serialized once each and encoded once per transport, and each monitor gets the batch in one
// write, off the step's path. With no monitor connected it only appends the event to the
// history. Authentication is the caller's job (coordinator/monitoring.ts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { DroppedNotice, HistoryNotice, StreamEvent, WorkersEvent } from '../shared/events.js';
import { EventHistory } from './event-history.js';

/** A monitor with more than this many bytes queued is behind: its step events are dropped, its history waits. */
export const HIGH_WATER_BYTES = 256 * 1024;
/** Monitors connected at most, by default (--max-monitors). */
export const DEFAULT_MAX_MONITORS = 64;
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
/** What a refused monitor is told to wait before it tries again, s. */
const RETRY_AFTER_S = 5;
/**
 * Events wait this long to be fanned out together, ms: far below what a person watching notices,
 * long enough that a run committing thousands of steps a second costs each monitor one write per
 * batch instead of one per step (issue 10, item 4: 500 monitors made a run 9× slower).
 */
export const FAN_OUT_MS = 16;

/**
 * Events fanned out together: serialized once, and encoded once per transport on first use
 * (every monitor of that transport then writes the same bytes).
 */
export class EventBatch {
  readonly jsons: readonly string[];
  private sse: Buffer | null = null;
  private frames: Buffer[] | null = null;

  constructor(jsons: readonly string[]) {
    this.jsons = jsons;
  }

  /** The batch as Server-Sent Events `data:` blocks, in one buffer. */
  sseBytes(): Buffer {
    this.sse ??= Buffer.from(this.jsons.map((json) => `data: ${json}\n\n`).join(''));
    return this.sse;
  }

  /** Each message's UTF-8 bytes (one WebSocket text frame each). */
  messageBytes(): readonly Buffer[] {
    this.frames ??= this.jsons.map((json) => Buffer.from(json));
    return this.frames;
  }
}

/** One connected monitor's transport (a WebSocket, an SSE response, or a test's fake). */
export interface MonitorSink {
  /** Bytes queued and not yet taken by the peer's socket. */
  bufferedBytes(): number;
  /** Sends one JSON message. */
  write(json: string): void;
  /** Sends every message of a batch, in order, in one write where the transport allows. */
  writeBatch(batch: EventBatch): void;
  keepalive(): void;
  /** Calls `callback` once, when the bytes queued now have gone to the peer's socket (not called if it closes first). */
  onDrain(callback: () => void): void;
  /** Closes after what is queued has gone; resolves once closed (or cut after the grace period). */
  end(reason: string): Promise<void>;
}

interface Monitor {
  readonly sink: MonitorSink;
  /** History events not sent yet (a snapshot taken when it joined, paced by its buffer); null once all went out. */
  history: readonly StreamEvent[] | null;
  /** Index in `history` of the next event to send. */
  historyNext: number;
  /** Eval, membership and run events not yet sent because the monitor was behind. */
  readonly backlog: string[];
  /** Events not sent since the last dropped notice. */
  dropped: number;
  /**
   * While the history and what queued behind it go out (its catch-up): the history's step stride,
   * at which live steps are sampled into the backlog instead of dropped; 0 once caught up.
   */
  catchUpStride: number;
  /** During the catch-up, the newest live step off that sample (sent before the next other event, or last). */
  heldStep: string | null;
  /** Whether a drain callback is registered (one at a time). */
  isAwaitingDrain: boolean;
  isDetached: boolean;
}

/** What the workers' snapshot and the history need from outside. */
export interface MonitorHubOptions {
  /** Per-worker summary for a `workers` message; null when nothing changed since the last one, unless forced. */
  readonly workersSnapshot: (force: boolean) => WorkersEvent | null;
  readonly maxStepEvents?: number;
  /** Monitors connected at most; more are refused (HTTP 503). Default DEFAULT_MAX_MONITORS. */
  readonly maxMonitors?: number;
  /** Batching delay of the fan-out, ms. Default FAN_OUT_MS. */
  readonly fanOutMs?: number;
}

export class MonitorHub {
  private readonly options: MonitorHubOptions;
  private readonly maxMonitors: number;
  private readonly history: EventHistory;
  private readonly monitors: Monitor[] = [];
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_MONITOR_FRAME_BYTES });
  /** Events published but not yet in the history nor sent: the next fan-out batch, in order. */
  private pending: StreamEvent[] = [];
  private fanOutTimer: NodeJS.Timeout | null = null;
  /**
   * Each history event as a one-event batch, made on first use: late joiners replaying the same
   * history share the same string and bytes instead of each serializing and encoding it again.
   */
  private readonly historyBatches = new WeakMap<StreamEvent, EventBatch>();
  private ticker: NodeJS.Timeout | null = null;
  private ticks = 0;
  private lastWorkers: string | null = null;
  private droppedTotal = 0;
  private refusedTotal = 0;
  private isClosed = false;

  constructor(options: MonitorHubOptions) {
    this.options = options;
    this.maxMonitors = options.maxMonitors ?? DEFAULT_MAX_MONITORS;
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

  /** Monitors refused because --max-monitors were connected, over the run. */
  get refusedMonitors(): number {
    return this.refusedTotal;
  }

  /** The most bytes queued for any one monitor now (bounded by about HIGH_WATER_BYTES plus one batch). */
  get maxQueuedBytes(): number {
    let most = 0;
    for (const monitor of this.monitors) most = Math.max(most, monitor.sink.bufferedBytes());
    return most;
  }

  /**
   * Queues an event for the history and every monitor; the fan-out runs within FAN_OUT_MS. O(1)
   * for the caller; allocation-free while no monitor is connected.
   */
  publish(event: StreamEvent): void {
    if (this.monitors.length === 0 && this.pending.length === 0) {
      this.history.add(event);
      return;
    }
    this.pending.push(event);
    if (this.fanOutTimer === null) {
      this.fanOutTimer = setTimeout(this.fanOut, this.options.fanOutMs ?? FAN_OUT_MS);
      this.fanOutTimer.unref(); // close() sends what is queued
    }
  }

  /** Sends every monitor a fresh workers snapshot now, queued for one that is behind (the run's final figures). */
  publishWorkers(): void {
    this.flushPending();
    const workers = this.options.workersSnapshot(true);
    if (workers === null) return;
    const json = JSON.stringify(workers);
    this.lastWorkers = json;
    for (let i = 0; i < this.monitors.length; i++) this.deliver(this.monitors[i]!, json); // i < length
  }

  /** Takes over an authenticated upgrade to /monitor; refused with 503 when --max-monitors are connected. */
  acceptWebSocket(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Until ws owns the socket (and after), a reset must not become an uncaught exception.
    socket.on('error', () => socket.destroy());
    if (this.isClosed) {
      refuseUpgrade(socket, 503, 'the run is over');
      return;
    }
    if (!this.hasRoom()) {
      this.refusedTotal++;
      refuseUpgrade(socket, 503, `this coordinator serves at most ${this.maxMonitors} monitors (--max-monitors); try again later`);
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      // A peer's invalid frame is an 'error' on the WebSocket: it must have a listener in every state.
      ws.on('error', () => undefined);
      if (this.isClosed || !this.hasRoom()) {
        ws.close(this.isClosed ? 1001 : 1013, this.isClosed ? 'the run is over' : 'too many monitors');
        return;
      }
      const detach = this.attach(webSocketSink(ws, socket));
      ws.on('close', detach);
      ws.on('error', detach);
    });
  }

  /** Takes over an authenticated GET /events as a Server-Sent Events stream; 503 when --max-monitors are connected. */
  acceptEventStream(response: ServerResponse): void {
    if (this.isClosed || !this.hasRoom()) {
      if (!this.isClosed) this.refusedTotal++;
      response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': String(RETRY_AFTER_S), 'cache-control': 'no-store' });
      response.end(this.isClosed ? 'the run is over\n' : `this coordinator serves at most ${this.maxMonitors} monitors (--max-monitors); try again later\n`);
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
    this.flushPending();
    this.isClosed = true;
    this.stopTicker();
    const monitors = this.monitors.splice(0);
    await Promise.all(
      monitors.map((monitor) => {
        monitor.isDetached = true;
        // The last events (the run's end among them) go out whatever the monitor's buffer holds: the
        // backlog is bounded. History not yet sent stays unsent: the live events it precedes went as dropped.
        this.sendDroppedNotice(monitor);
        for (const json of monitor.backlog.splice(0)) monitor.sink.write(json);
        if (monitor.heldStep !== null) monitor.sink.write(monitor.heldStep);
        monitor.heldStep = null;
        return monitor.sink.end(reason);
      }),
    );
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  /**
   * Adds a monitor: the history notice now, then the history and live events as its buffer
   * allows. Returns what removes it (call it when its transport closes). Does not check
   * --max-monitors (the accept paths do).
   */
  attach(sink: MonitorSink): () => void {
    const monitor: Monitor = {
      sink,
      history: null,
      historyNext: 0,
      backlog: [],
      dropped: 0,
      catchUpStride: 0,
      heldStep: null,
      isAwaitingDrain: false,
      isDetached: false,
    };
    sink.write(JSON.stringify(this.historyNotice()));
    if (this.history.size > 0) {
      monitor.history = this.history.snapshot();
      monitor.catchUpStride = this.history.stepStride;
    }
    const workers = this.options.workersSnapshot(true);
    if (workers !== null) this.lastWorkers = JSON.stringify(workers);
    // After the history: the backlog is sent once the history has gone.
    if (this.lastWorkers !== null) monitor.backlog.push(this.lastWorkers);
    this.monitors.push(monitor);
    this.pump(monitor);
    if (this.ticker === null) {
      this.ticker = setInterval(() => this.tick(), TICK_MS);
      this.ticker.unref();
    }
    return () => {
      monitor.isDetached = true;
      const index = this.monitors.indexOf(monitor);
      if (index < 0) return;
      this.monitors.splice(index, 1);
      if (this.monitors.length === 0) this.stopTicker();
    };
  }

  /**
   * What a new monitor is sent first (the history notice, the history, the workers snapshot) as
   * one JSON array, for the dashboard page to draw before its socket connects (issue 14). Every
   * `<` is escaped (\u003c, still JSON) so that the text can sit inside an HTML script element.
   */
  snapshotJson(): string {
    const workers = this.options.workersSnapshot(true);
    const messages: (HistoryNotice | StreamEvent | WorkersEvent)[] = [this.historyNotice(), ...this.history.snapshot()];
    if (workers !== null) messages.push(workers);
    return JSON.stringify(messages).replaceAll('<', '\\u003c');
  }

  private historyNotice(): HistoryNotice {
    return { type: 'history', events: this.history.size, stepStride: this.history.stepStride, stepsSeen: this.history.stepCount, time: Date.now() };
  }

  private hasRoom(): boolean {
    return this.monitors.length < this.maxMonitors;
  }

  private readonly fanOut = (): void => {
    this.fanOutTimer = null;
    this.flushPending();
  };

  /** Adds the queued events to the history and sends them, serialized once, to every monitor: one batch write each, or event by event to a monitor that is behind. */
  private flushPending(): void {
    if (this.fanOutTimer !== null) clearTimeout(this.fanOutTimer);
    this.fanOutTimer = null;
    if (this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    const jsons: string[] = new Array<string>(events.length);
    // The first step's index in the stream (the history samples every stride-th index from 0).
    const firstStepIndex = this.history.stepCount;
    for (let i = 0; i < events.length; i++) {
      this.history.add(events[i]!); // i < length
      if (this.monitors.length > 0) jsons[i] = JSON.stringify(events[i]);
    }
    if (this.monitors.length === 0) return;
    const batch = new EventBatch(jsons);
    for (const monitor of this.monitors) {
      if (this.isBehind(monitor)) this.pump(monitor);
      // A monitor not behind takes the whole batch (its queue may pass the high-water mark by one batch).
      if (!this.isBehind(monitor)) {
        monitor.sink.writeBatch(batch);
        continue;
      }
      let stepIndex = firstStepIndex;
      for (let i = 0; i < events.length; i++) {
        const json = jsons[i]!; // i < length
        if (events[i]!.type === 'step') {
          const index = stepIndex++;
          if (monitor.catchUpStride === 0 || monitor.backlog.length >= MAX_BACKLOG) this.countDropped(monitor);
          else if (index % monitor.catchUpStride === 0) {
            monitor.backlog.push(json);
            monitor.heldStep = null;
          } else monitor.heldStep = json;
          continue;
        }
        // The newest step goes before any later event (an eval belongs to the step before it).
        if (monitor.heldStep !== null && monitor.backlog.length < MAX_BACKLOG) {
          monitor.backlog.push(monitor.heldStep);
          monitor.heldStep = null;
        }
        if (monitor.backlog.length >= MAX_BACKLOG) this.countDropped(monitor);
        else monitor.backlog.push(json);
      }
    }
  }

  /** Sends one message that must not be dropped while there is room (a workers snapshot); queued for a monitor that is behind. */
  private deliver(monitor: Monitor, json: string): void {
    if (this.isBehind(monitor)) this.pump(monitor);
    if (!this.isBehind(monitor)) monitor.sink.write(json);
    else if (monitor.backlog.length >= MAX_BACKLOG) this.countDropped(monitor);
    else monitor.backlog.push(json);
  }

  private isBehind(monitor: Monitor): boolean {
    return (
      monitor.history !== null ||
      monitor.dropped > 0 ||
      monitor.backlog.length > 0 ||
      monitor.heldStep !== null ||
      monitor.sink.bufferedBytes() >= HIGH_WATER_BYTES
    );
  }

  /**
   * Sends what a monitor has waiting, in order (history, then the dropped notice, then the
   * backlog), as far as its buffer allows; when the buffer is full, continues once it drains.
   */
  private pump(monitor: Monitor): void {
    if (monitor.isDetached) return;
    const sink = monitor.sink;
    const history = monitor.history;
    if (history !== null) {
      while (monitor.historyNext < history.length && sink.bufferedBytes() < HIGH_WATER_BYTES) {
        sink.writeBatch(this.historyBatch(history[monitor.historyNext++]!)); // historyNext < length
      }
      if (monitor.historyNext < history.length) {
        this.pumpOnDrain(monitor);
        return;
      }
      monitor.history = null;
    }
    if (sink.bufferedBytes() >= HIGH_WATER_BYTES) {
      this.pumpOnDrain(monitor);
      return;
    }
    this.sendDroppedNotice(monitor);
    while (monitor.backlog.length > 0 && sink.bufferedBytes() < HIGH_WATER_BYTES) {
      sink.write(monitor.backlog.shift()!); // length > 0
    }
    if (monitor.backlog.length > 0) {
      this.pumpOnDrain(monitor);
      return;
    }
    if (monitor.heldStep !== null) {
      sink.write(monitor.heldStep);
      monitor.heldStep = null;
    }
    // Caught up: from now on a step that finds this monitor behind is dropped (and counted).
    monitor.catchUpStride = 0;
  }

  private historyBatch(event: StreamEvent): EventBatch {
    let batch = this.historyBatches.get(event);
    if (batch === undefined) {
      batch = new EventBatch([JSON.stringify(event)]);
      this.historyBatches.set(event, batch);
    }
    return batch;
  }

  private pumpOnDrain(monitor: Monitor): void {
    if (monitor.isAwaitingDrain) return;
    monitor.isAwaitingDrain = true;
    monitor.sink.onDrain(() => {
      monitor.isAwaitingDrain = false;
      this.pump(monitor);
    });
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

  /** Sends queued events, what monitors that caught up still have pending, a fresh workers snapshot; keeps connections alive. Runs every TICK_MS while monitors are connected. */
  tick(): void {
    this.flushPending();
    this.ticks++;
    const isKeepalive = this.ticks % KEEPALIVE_TICKS === 0;
    const workers = this.options.workersSnapshot(false);
    const json = workers === null ? null : JSON.stringify(workers);
    if (json !== null) this.lastWorkers = json;
    for (const monitor of [...this.monitors]) {
      this.pump(monitor);
      if (isKeepalive) monitor.sink.keepalive();
      // A snapshot supersedes the previous one: a monitor that is behind skips it (coalesced, not counted).
      if (json !== null && !this.isBehind(monitor)) monitor.sink.write(json);
    }
  }

  private stopTicker(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
  }
}

/** Answers an upgrade with a plain HTTP error and closes the socket (a polite refusal: the client sees the status). */
function refuseUpgrade(socket: Duplex, status: 503, message: string): void {
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} Service Unavailable\r\nConnection: close\r\nRetry-After: ${RETRY_AFTER_S}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** A WebSocket monitor; `socket` is its TCP (or TLS) socket, for corking and drain events. */
function webSocketSink(ws: WebSocket, socket: Duplex): MonitorSink {
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
    writeBatch: (batch) => {
      if (ws.readyState !== ws.OPEN) return;
      // One frame per message (the stream's unit), all in one socket write.
      socket.cork();
      for (const bytes of batch.messageBytes()) ws.send(bytes, { binary: false });
      socket.uncork();
    },
    keepalive: () => {
      if (isAwaitingPong) {
        ws.terminate();
        return;
      }
      isAwaitingPong = true;
      if (ws.readyState === ws.OPEN) ws.ping();
    },
    onDrain: (callback) => whenDrained(socket, callback),
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
  const isOpen = (): boolean => !response.writableEnded && !response.destroyed;
  return {
    bufferedBytes: () => response.writableLength,
    write: (json) => {
      if (isOpen()) response.write(`data: ${json}\n\n`);
    },
    writeBatch: (batch) => {
      if (isOpen()) response.write(batch.sseBytes());
    },
    keepalive: () => {
      if (isOpen()) response.write(': keepalive\n\n');
    },
    onDrain: (callback) => whenDrained(response, callback),
    end: () =>
      new Promise<void>((resolve) => {
        if (!isOpen()) return resolve();
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

/** Calls `callback` once `stream` has drained (a tick later if it is not waiting for a drain); never if it closes first. */
function whenDrained(stream: NodeJS.WritableStream & { readonly writableNeedDrain: boolean; readonly destroyed: boolean }, callback: () => void): void {
  if (stream.destroyed) return;
  if (stream.writableNeedDrain) stream.once('drain', callback);
  else setTimeout(callback, TICK_MS).unref(); // never a busy loop
}
