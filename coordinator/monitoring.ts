// The coordinator's monitoring surface, mounted on its port as HttpRoutes: the loss stream
// (WebSocket /monitor, Server-Sent Events /events), GET /metrics (Prometheus) and the dashboard
// at /. All read-only and guarded by the monitor token (or the workers' token); the dashboard's
// static files are open. The page at / comes with the stream so far inlined. run.ts feeds it the loss stream and the trainer's part hook.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RunEndEvent, RunSettings, RunStartEvent, StreamEvent } from '../shared/events.js';
import { batchesPerEpoch } from '../shared/schedule.js';
import { createTokenCheck, requestToken } from './auth.js';
import type { CoordinatorConfig } from './config.js';
import { type Asset, loadDashboardAssets, pageWithSnapshot } from './dashboard-assets.js';
import { MonitorHub } from './monitor-hub.js';
import { PrometheusMetrics } from './prometheus.js';
import type { HttpRoutes } from './server.js';
import { WorkerStats } from './worker-stats.js';

export interface MonitoringOptions {
  /** The workers' token in force (null: none). */
  readonly token: string | null;
  /** Read-only token for monitors; null: the workers' token. */
  readonly monitorToken: string | null;
  /** Monitors connected at most; more get HTTP 503. */
  readonly maxMonitors: number;
  readonly log: (line: string) => void;
}

const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  // The token travels in the page's URL: never send it on as a referrer.
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; frame-ancestors 'none'",
};

export class Monitoring {
  readonly routes: HttpRoutes;
  private readonly workerStats = new WorkerStats();
  private readonly hub: MonitorHub;
  private readonly prometheus: PrometheusMetrics;
  private readonly assets: Map<string, Asset> | null;
  private readonly isAllowed: (candidate: string) => boolean;
  /** The next step's number. */
  private steps = 0;

  constructor(options: MonitoringOptions) {
    const monitorMatches = createTokenCheck(options.monitorToken ?? options.token);
    const workerMatches = options.token === null ? () => false : createTokenCheck(options.token);
    // The workers' token may do anything a monitor may; the monitor token cannot join as a worker.
    this.isAllowed = (candidate) => monitorMatches(candidate) || workerMatches(candidate);
    this.hub = new MonitorHub({
      maxMonitors: options.maxMonitors,
      workersSnapshot: (force) => (force || this.workerStats.isChanged ? { type: 'workers', workers: this.workerStats.snapshot(), time: Date.now() } : null),
    });
    this.prometheus = new PrometheusMetrics(this.workerStats, () => ({
      monitors: this.hub.monitorCount,
      droppedEvents: this.hub.droppedEvents,
      refusedMonitors: this.hub.refusedMonitors,
      maxQueuedBytes: this.hub.maxQueuedBytes,
    }));
    const loaded = loadDashboardAssets();
    if ('problem' in loaded) options.log(`the dashboard is unavailable: ${loaded.problem}`);
    this.assets = 'assets' in loaded ? loaded.assets : null;
    this.routes = {
      request: (request, response, url) => this.httpOnRequest(request, response, url),
      upgrade: (request, socket, head, url) => this.httpOnUpgrade(request, socket, head, url),
    };
  }

  /** The trainer's hook for accepted parts (worker id, rows); allocation-free. */
  readonly partAccepted = (workerId: number, rows: number): void => this.workerStats.partAccepted(workerId, rows);

  /** Every event of the loss stream, in order. */
  publish(event: StreamEvent): void {
    if (event.type === 'step') this.steps = event.step + 1;
    this.workerStats.handle(event);
    this.prometheus.handle(event);
    this.hub.publish(event);
  }

  /** Publishes the run start: the schedule is fixed and the workers are in; `settings` from run-description.ts. */
  started(config: CoordinatorConfig, settings: RunSettings, totalSteps: number, firstStep: number): void {
    this.steps = firstStep;
    const event: RunStartEvent = {
      type: 'run',
      event: 'start',
      totalSteps,
      firstStep,
      epochs: config.epochs,
      stepsPerEpoch: batchesPerEpoch(settings.trainRows, config.batchSize),
      config: settings,
      time: Date.now(),
    };
    this.publish(event);
  }

  /** Publishes the final workers snapshot and the run's end, lets every monitor take its last events (bounded), and closes them. */
  async finished(outcome: RunEndEvent['outcome'], reason: string | null): Promise<void> {
    this.hub.publishWorkers();
    const event: RunEndEvent = { type: 'run', event: 'end', outcome, steps: this.steps, reason, time: Date.now() };
    this.publish(event);
    await this.hub.close(outcome === 'finished' ? 'training finished' : 'training failed');
  }

  private httpOnRequest(request: IncomingMessage, response: ServerResponse, url: URL): boolean {
    // HEAD only for the static files; anything else but GET is the server's 405.
    if (request.method !== 'GET' && !(request.method === 'HEAD' && url.pathname !== '/events')) return false;
    const isGuarded = url.pathname === '/' || url.pathname === '/events' || url.pathname === '/metrics';
    const asset = this.assets?.get(url.pathname);
    if (!isGuarded && asset === undefined) return false;
    if (isGuarded && !this.isAllowed(requestToken(request, url))) {
      response.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'www-authenticate': 'Bearer' });
      response.end(url.pathname === '/' ? 'missing or wrong token: open this page as /?token=TOKEN\n' : 'missing or wrong token\n');
      return true;
    }
    if (url.pathname === '/events') this.hub.acceptEventStream(response);
    else if (url.pathname === '/metrics') this.serveMetrics(response);
    else if (asset !== undefined) {
      // The page carries the stream so far: it draws the run at once, not when its socket delivers (issue 14).
      const body = url.pathname === '/' ? pageWithSnapshot(asset.body, this.hub.snapshotJson()) : asset.body;
      response.writeHead(200, { ...PAGE_HEADERS, 'content-type': asset.contentType, 'content-length': body.length });
      response.end(request.method === 'HEAD' ? undefined : body);
    } else {
      response.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
      response.end('the dashboard files are missing from this installation\n');
    }
    return true;
  }

  private serveMetrics(response: ServerResponse): void {
    this.prometheus.text().then(
      (text) => {
        response.writeHead(200, { 'content-type': this.prometheus.contentType, 'cache-control': 'no-store' });
        response.end(text);
      },
      (error: unknown) => {
        response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        response.end(`cannot collect the metrics: ${error instanceof Error ? error.message : String(error)}\n`);
      },
    );
  }

  private httpOnUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    if (url.pathname !== '/monitor') return false;
    if (!this.isAllowed(requestToken(request, url))) {
      const body = 'missing or wrong token\n';
      socket.end(
        `HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      return true;
    }
    this.hub.acceptWebSocket(request, socket, head);
    return true;
  }
}
