// GET /metrics in the Prometheus text format (prom-client): steps, rows, loss, the step
// duration histogram, workers, per-worker rows and failures, monitors, plus Node.js process
// metrics. Values are plain numbers read at scrape time; a step only writes numbers, so the
// per-step path allocates nothing (step durations wait in a typed array until they are observed).

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { StreamEvent } from '../shared/events.js';
import type { WorkerStats } from './worker-stats.js';

/** Step durations held before they are handed to the histogram (at a scrape, or when this many). */
const PENDING_DURATIONS = 1024;
/** Step duration buckets, seconds: local steps take well under a millisecond, remote ones more. */
const STEP_SECONDS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface MonitorCounts {
  readonly monitors: number;
  readonly droppedEvents: number;
  /** Monitors refused because --max-monitors were connected. */
  readonly refusedMonitors: number;
  /** The most bytes queued for any one monitor now. */
  readonly maxQueuedBytes: number;
}

export class PrometheusMetrics {
  private readonly registry = new Registry();
  private readonly stepSeconds: Histogram;
  /** Step durations (s) not yet observed: prom-client allocates per observation, so it happens in batches. */
  private readonly pendingSeconds = new Float64Array(PENDING_DURATIONS);
  private pendingCount = 0;
  private steps = 0;
  private rows = 0;
  private loss: number | null = null;
  private epoch = 0;
  private totalSteps = 0;
  private workersConnected = 0;
  private trainLoss: number | null = null;
  private valLoss: number | null = null;
  private valAccuracy: number | null = null;

  constructor(workerStats: WorkerStats, monitors: () => MonitorCounts) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const counter = (name: string, help: string, read: () => number): void => {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    };
    // A value not known yet (null) is NaN: prom-client always writes a sample for a gauge without labels.
    const gauge = (name: string, help: string, read: () => number | null): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read() ?? Number.NaN);
        },
      });
    };
    counter('dpt_steps_total', 'Committed training steps.', () => this.steps);
    counter('dpt_rows_total', 'Rows in committed steps.', () => this.rows);
    gauge('dpt_loss', 'Mean loss of the last committed batch, before its update (NaN before the first step).', () => this.loss);
    gauge('dpt_epoch', 'Epoch of the last committed step (0-based).', () => this.epoch);
    gauge('dpt_steps_planned', 'Steps of the whole run (0 before training starts).', () => this.totalSteps);
    gauge('dpt_workers_connected', 'Workers ready to take steps.', () => this.workersConnected);
    gauge('dpt_train_loss', 'Loss over all training rows at the last epoch end (NaN before it).', () => this.trainLoss);
    gauge('dpt_validation_loss', 'Validation loss at the last epoch end (NaN without --val-split).', () => this.valLoss);
    gauge('dpt_validation_accuracy', 'Validation accuracy at the last epoch end (NaN without --val-split).', () => this.valAccuracy);
    gauge('dpt_monitors_connected', 'Monitors (WebSocket and SSE) connected to the loss stream.', () => monitors().monitors);
    counter('dpt_monitor_dropped_events_total', 'Loss stream events not sent to a monitor that fell behind.', () => monitors().droppedEvents);
    counter('dpt_monitors_refused_total', 'Monitors refused (HTTP 503) because --max-monitors were connected.', () => monitors().refusedMonitors);
    gauge('dpt_monitor_queued_bytes_max', 'The most bytes queued for any one monitor (bounded per monitor).', () => monitors().maxQueuedBytes);
    const observePending = (): void => this.observePending();
    this.stepSeconds = new Histogram({
      name: 'dpt_step_duration_seconds',
      help: 'Time from scattering a step to committing it.',
      buckets: STEP_SECONDS_BUCKETS,
      registers,
      collect() {
        observePending();
      },
    });
    new Counter({
      name: 'dpt_worker_rows_total',
      help: 'Rows of the parts accepted from each worker (by worker id; recent departed workers included).',
      labelNames: ['worker'],
      registers,
      collect() {
        this.reset();
        workerStats.forEach((workerId, rows) => {
          this.inc({ worker: String(workerId) }, rows);
        });
      },
    });
    new Counter({
      name: 'dpt_worker_failures_total',
      help: 'Times each worker left while training ran (disconnect, step timeout, bad message).',
      labelNames: ['worker'],
      registers,
      collect() {
        this.reset();
        workerStats.forEach((workerId, _rows, failures) => {
          this.inc({ worker: String(workerId) }, failures);
        });
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  handle(event: StreamEvent): void {
    switch (event.type) {
      case 'step':
        this.steps++;
        this.rows += event.rows;
        this.loss = event.loss;
        this.epoch = event.epoch;
        this.pendingSeconds[this.pendingCount++] = event.stepMs / 1000;
        if (this.pendingCount === PENDING_DURATIONS) this.observePending();
        return;
      case 'eval':
        this.trainLoss = event.trainLoss;
        this.valLoss = event.valLoss;
        this.valAccuracy = event.valAccuracy;
        return;
      case 'worker':
        this.workersConnected = event.workers;
        return;
      case 'run':
        if (event.event === 'start') this.totalSteps = event.totalSteps;
        return;
    }
  }

  private observePending(): void {
    for (let i = 0; i < this.pendingCount; i++) this.stepSeconds.observe(this.pendingSeconds[i]!); // i < pendingCount ≤ length
    this.pendingCount = 0;
  }

  /** The exposition text. */
  async text(): Promise<string> {
    // prom-client writes NaN (e.g. an event-loop lag without samples yet) as "Nan"; the format says "NaN".
    return (await this.registry.metrics()).replace(/ Nan$/gm, ' NaN');
  }
}
