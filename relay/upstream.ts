// A relay's link to its coordinator: to the coordinator the relay is a worker with a capacity. It
// connects (retrying until --connect-timeout), authenticates, says ready with its group's size,
// forwards the coordinator's messages in order, answers with the relay's parts, keeps the link
// alive with heartbeats, and reconnects (welcomed afresh, with a new id) when the link is lost.

import { hostname } from 'node:os';
import { WebSocket } from 'ws';
import { AuthError, CoordinatorLostError, ProtocolError } from '../shared/errors.js';
import { watchHeartbeat } from '../shared/heartbeat.js';
import { supportedKernelIds } from '../shared/model-kernel.js';
import { shapeOf } from '../shared/model-shape.js';
import { MAX_PASS_BLOCKS } from '../shared/passes.js';
import {
  CLOSE_NORMAL,
  CLOSE_POLICY,
  type CoordinatorToWorker,
  decodeCoordinatorMessage,
  encodeMessage,
  type Limits,
  PROTOCOL_VERSION,
  type WelcomeMessage,
  type WorkerToCoordinator,
  workerName,
} from '../shared/protocol.js';
import { SPARSE_LOGISTIC_KERNEL_ID, SPARSE_SOFTMAX_KERNEL_ID } from '../shared/sparse-kernel.js';
import type { RelayConfig } from './config.js';

/** A job, standardization or (a sparse run) params message from the coordinator. */
export type RelayedMessage = Extract<CoordinatorToWorker, { kind: 'step' | 'pass' | 'standardize' | 'params' }>;

/** What the relay does with what the link hears. */
export interface UpstreamHandlers {
  /** A session's welcome (the first, or after a reconnect): resolves with the group's capacity for the ready message; a DptError refuses the run. */
  welcomed(welcome: WelcomeMessage): Promise<number>;
  /** A message of the current session, in the coordinator's order. */
  message(message: RelayedMessage): void;
  /** The session ended without a stop: its work is void (the coordinator recomputes it), the link reconnects. */
  lost(reason: string): void;
}

type SessionEnd = { kind: 'stopped'; reason: string } | { kind: 'lost'; reason: string; wasWelcomed: boolean };

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
/** Bounds one coordinator message, as for a worker (D up to ~8 million). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
const PRE_WELCOME_LIMITS: Limits = { features: null, parameters: null, maxChunks: 65_536 };
const CLOSE_GRACE_MS = 2000;

export class UpstreamLink {
  private readonly config: RelayConfig;
  private readonly handlers: UpstreamHandlers;
  private readonly log: (line: string) => void;
  private socket: WebSocket | null = null;
  private isReady = false;
  /** Set by leave(): the run ends after this session. */
  private isLeaving = false;
  /** Ends the session under way (giveUp, leave), or null between sessions. */
  private endSession: ((end: SessionEnd) => void) | null = null;

  constructor(config: RelayConfig, handlers: UpstreamHandlers, log: (line: string) => void) {
    this.config = config;
    this.handlers = handlers;
    this.log = log;
  }

  /** Runs sessions until the coordinator says stop or leave() is called (resolves with why); rejects when refused or unreachable for --connect-timeout. */
  async run(): Promise<string> {
    let giveUpAt = Date.now() + this.config.connectTimeoutMs;
    let backoffMs = FIRST_BACKOFF_MS;
    for (;;) {
      if (this.isLeaving) return 'left';
      const end = await this.session(giveUpAt);
      if (end.kind === 'stopped') return end.reason;
      if (this.isLeaving) return 'left';
      if (end.wasWelcomed) {
        this.handlers.lost(end.reason);
        giveUpAt = Date.now() + this.config.connectTimeoutMs;
        backoffMs = FIRST_BACKOFF_MS;
        this.log(`lost the coordinator (${end.reason}); reconnecting`);
      }
      if (Date.now() >= giveUpAt) {
        throw new CoordinatorLostError(`cannot reach the coordinator at ${this.config.coordinatorUrl} (${end.reason}) for ${this.config.connectTimeoutMs} ms`);
      }
      await new Promise<void>((resolve) => setTimeout(resolve, backoffMs * (0.5 + Math.random() / 2)));
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
    }
  }

  /** Sends on the ready session; false when there is none (the message belongs to a session that ended). */
  send(message: WorkerToCoordinator): boolean {
    if (!this.isReady || this.socket?.readyState !== WebSocket.OPEN) return false;
    this.socket.send(encodeMessage(message));
    return true;
  }

  /** Leaves the current session (the coordinator recomputes what the relay owed) and joins again. */
  giveUp(reason: string): void {
    this.closeWith('leave', reason);
  }

  /** Leaves for good: the coordinator hears why, run() resolves. */
  leave(reason: string): void {
    this.isLeaving = true;
    this.closeWith('leave', reason);
  }

  private closeWith(kind: 'leave', reason: string): void {
    const socket = this.socket;
    if (socket !== null && socket.readyState === WebSocket.OPEN) {
      socket.send(encodeMessage({ kind, reason }));
      socket.close(CLOSE_NORMAL, 'goodbye');
      setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
    } else socket?.terminate();
    this.isReady = false;
    this.endSession?.({ kind: 'lost', reason, wasWelcomed: true });
  }

  /** One connection: resolves when it ends; rejects when refused (a bad token) or the run cannot be served. */
  private session(giveUpAt: number): Promise<SessionEnd> {
    return new Promise<SessionEnd>((resolve, reject) => {
      const { config } = this;
      const socket = new WebSocket(config.coordinatorUrl, {
        perMessageDeflate: false,
        maxPayload: MAX_MESSAGE_BYTES,
        ...(config.ca === null ? {} : { ca: config.ca }),
      });
      this.socket = socket;
      this.isReady = false;
      let settled: SessionEnd | Error | null = null;
      let isWelcomed = false;
      let deadlineReason = '';
      const finish = (end: SessionEnd | Error): void => {
        if (settled !== null) return;
        settled = end;
        heartbeat.stop();
        clearTimeout(welcomeTimer);
        this.endSession = null;
        this.isReady = false;
        if (end instanceof Error) reject(end);
        else resolve(end);
      };
      this.endSession = finish;
      const welcomeTimer = setTimeout(
        () => {
          deadlineReason = `no welcome from it before the --connect-timeout of ${config.connectTimeoutMs} ms ran out`;
          socket.terminate();
        },
        Math.max(1, giveUpAt - Date.now()),
      );
      const heartbeat = watchHeartbeat(socket, config.heartbeatMs, (line) => this.log(line));
      const fail = (error: Error): void => {
        if (socket.readyState === WebSocket.OPEN) {
          socket.send(encodeMessage({ kind: 'fail', message: error.message.slice(0, 4000) }));
          socket.close(CLOSE_POLICY, 'cannot serve this run');
        }
        setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
        finish(error);
      };
      socket.on('open', () => {
        const relayName = workerName(hostname());
        socket.send(
          encodeMessage({
            kind: 'hello',
            protocol: PROTOCOL_VERSION,
            token: config.token ?? '',
            node: process.version,
            // The sparse kernels too (issue #13): the relay passes sparse runs on to workers that run them.
            kernel: [...supportedKernelIds(), SPARSE_LOGISTIC_KERNEL_ID, SPARSE_SOFTMAX_KERNEL_ID].join(','),
            cpus: '',
            // Its host name, for the coordinator's log (like a worker's).
            ...(relayName === undefined ? {} : { name: relayName }),
          }),
        );
      });
      let limits = PRE_WELCOME_LIMITS;
      // Messages after the welcome wait until the relay is ready (its group's server is listening), in order.
      let queue: Promise<void> = Promise.resolve();
      socket.on('message', (data, isBinary) => {
        heartbeat.beat();
        if (settled !== null) return;
        let message: CoordinatorToWorker;
        try {
          if (!isBinary) throw new ProtocolError('?', 'bytes', 'a text frame');
          message = decodeCoordinatorMessage(toBytes(data), limits);
        } catch (error) {
          if (!(error instanceof ProtocolError)) throw error;
          fail(error);
          return;
        }
        switch (message.kind) {
          case 'welcome': {
            if (isWelcomed) return fail(new ProtocolError('welcome', 'kind', 'sent twice'));
            isWelcomed = true;
            clearTimeout(welcomeTimer);
            const welcome = message;
            limits = {
              features: welcome.features,
              parameters: shapeOf(welcome.model, welcome.classes, welcome.features).parameterCount,
              maxChunks: Math.max(welcome.schedule.chunksPerBatch, MAX_PASS_BLOCKS),
              // A sparse run (issue #13): params messages, and steps and passes naming a version instead of θ.
              ...(welcome.sparse === undefined || welcome.sparse === null ? {} : { sparse: true }),
            };
            queue = this.handlers.welcomed(welcome).then(
              (capacity) => {
                if (settled !== null) return;
                socket.send(encodeMessage({ kind: 'ready', rows: welcome.rows, features: welcome.features, sha256: welcome.sha256, capacity }));
                this.isReady = true;
              },
              // A DptError refuses the run; another (its port cannot be bound) ends the relay as it is.
              (error: unknown) => fail(error instanceof Error ? error : new Error(String(error))),
            );
            return;
          }
          case 'stop':
            finish({ kind: 'stopped', reason: `coordinator stopped this relay: ${message.reason}` });
            socket.close();
            return;
          default: {
            const relayed = message;
            queue = queue.then(() => {
              if (settled === null) this.handlers.message(relayed);
            });
          }
        }
      });
      let lastError = '';
      socket.on('error', (error) => {
        lastError = error.message;
      });
      socket.on('close', (code, reasonBytes) => {
        const reason = deadlineReason || reasonBytes.toString() || lastError || `connection closed (${code})`;
        // Refused during the handshake: retrying with the same token cannot help.
        if (code === CLOSE_POLICY && !isWelcomed) finish(new AuthError(`the coordinator refused this relay: ${reason}`));
        else finish({ kind: 'lost', reason, wasWelcomed: isWelcomed });
      });
    });
  }
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
