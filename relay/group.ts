// A relay's group of workers: the coordinator's WorkerServer (handshake, token, validation,
// heartbeats, registry) and Scatter (assignment, gather, recompute, backups, timeouts) run for
// the workers connected to this relay, welcomed as the coordinator welcomed the relay. It tells
// the relay each time the number of ready workers behind it (its capacity) changes.

import type { Scatter } from '../coordinator/scatter.js';
import { type WorkerConnection, type WorkerListener, WorkerServer } from '../coordinator/server.js';
import { shapeOf } from '../shared/model-shape.js';
import { PASS_BLOCKS } from '../shared/passes.js';
import type { PartMessage, PassPartMessage, WelcomeMessage } from '../shared/protocol.js';
import type { RelayConfig } from './config.js';
import { createDataProxy } from './data-proxy.js';

/** Time a welcomed worker has to open its data and say ready (as the coordinator allows). */
const READY_TIMEOUT_MS = 10 * 60_000;

export class RelayGroup implements WorkerListener {
  private readonly scatter: Scatter;
  private readonly onCapacity: (workers: number) => void;
  private server: WorkerServer | null = null;
  private lastCapacity = 0;

  private constructor(scatter: Scatter, onCapacity: (workers: number) => void) {
    this.scatter = scatter;
    this.onCapacity = onCapacity;
  }

  /** Listens for workers on the relay's address; `welcome` is the coordinator's, given to each worker with its own id. */
  static async open(
    config: RelayConfig,
    welcome: WelcomeMessage,
    scatter: Scatter,
    status: () => unknown,
    log: (line: string) => void,
    onCapacity: (workers: number) => void,
  ): Promise<{ group: RelayGroup; server: WorkerServer }> {
    const group = new RelayGroup(scatter, onCapacity);
    const { workerId: _relayId, ...forWorkers } = welcome;
    const server = await WorkerServer.listen(
      {
        host: config.host,
        port: config.port,
        token: config.token,
        welcome: forWorkers,
        limits: {
          features: welcome.features,
          parameters: shapeOf(welcome.model, welcome.classes, welcome.features).parameterCount,
          maxChunks: Math.max(welcome.schedule.chunksPerBatch, PASS_BLOCKS),
          // A sparse run (issue #13): its workers' parts carry touched coordinates.
          ...(welcome.sparse === undefined || welcome.sparse === null ? {} : { sparse: true }),
        },
        helloTimeoutMs: config.handshakeTimeoutMs,
        readyTimeoutMs: READY_TIMEOUT_MS,
        maxPendingHandshakes: config.maxPendingHandshakes,
        heartbeatMs: config.heartbeatMs,
        tls: null,
        unixSocketPath: null,
        log,
        status,
        // Workers without the data file fetch it from here (they send their token only where they connected).
        routes: createDataProxy({ coordinatorUrl: config.coordinatorUrl, token: config.token, ca: config.ca, log }),
      },
      group,
    );
    group.server = server;
    scatter.attach(server);
    return { group, server };
  }

  /** Workers ready behind this relay (relays behind it count their own). */
  get capacity(): number {
    return this.server?.readyCapacity() ?? 0;
  }

  workerReady(worker: WorkerConnection): void {
    this.scatter.workerReady(worker);
    this.capacityMayHaveChanged();
  }

  workerLost(worker: WorkerConnection, reason: string): void {
    this.scatter.workerLost(worker, reason);
    this.capacityMayHaveChanged();
  }

  workerFaulted(worker: WorkerConnection, reason: string, dataBlock: number | null): void {
    this.scatter.workerFaulted(worker, reason, dataBlock);
  }

  workerCapacity(worker: WorkerConnection, before: number): void {
    this.scatter.workerCapacity(worker, before);
    this.capacityMayHaveChanged();
  }

  part(worker: WorkerConnection, message: PartMessage): void {
    this.scatter.part(worker, message);
  }

  passPart(worker: WorkerConnection, message: PassPartMessage): void {
    this.scatter.passPart(worker, message);
  }

  private capacityMayHaveChanged(): void {
    const capacity = this.capacity;
    if (capacity === this.lastCapacity) return;
    this.lastCapacity = capacity;
    this.onCapacity(capacity);
  }
}
