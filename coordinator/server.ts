// The coordinator's WebSocket server: accepts connections, runs the handshake (protocol
// version, token, kernel, dataset check), validates every message before it reaches the
// trainer, and keeps the registry of ready workers. A bad peer is closed, never a crash.

import { chmodSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import { allowedCpus, parseCpuList } from '../shared/cpus.js';
import { ConfigError, ProtocolError } from '../shared/errors.js';
import {
  CLOSE_NORMAL,
  CLOSE_POLICY,
  type CoordinatorToWorker,
  decodeWorkerMessage,
  encodeMessage,
  type Limits,
  maxPartBytes,
  type PartMessage,
  type PassPartMessage,
  PROTOCOL_VERSION,
  unhandledKind,
  type WelcomeMessage,
} from '../shared/protocol.js';
import { createTokenCheck, isLoopbackAddress, requestToken } from './auth.js';

/** What the trainer hears from the server. */
export interface WorkerListener {
  workerReady(worker: WorkerConnection): void;
  workerLost(worker: WorkerConnection, reason: string): void;
  /**
   * A welcomed worker is about to be closed for a fault: a message that failed validation, or its
   * fail message (`dataBlock`: the content block of the data that failed its check there, or null).
   */
  workerFaulted(worker: WorkerConnection, reason: string, dataBlock: number | null): void;
  /** A ready relay's capacity changed from `before` to worker.capacity (0: assign it nothing new). */
  workerCapacity(worker: WorkerConnection, before: number): void;
  part(worker: WorkerConnection, message: PartMessage): void;
  passPart(worker: WorkerConnection, message: PassPartMessage): void;
}

/** Extra endpoints mounted on the coordinator's port (the monitoring surface). */
export interface HttpRoutes {
  /** Returns true when it handled the request. */
  request(request: IncomingMessage, response: ServerResponse, url: URL): boolean;
  /** Returns true when it took over the upgrade (e.g. a monitor WebSocket); other upgrades are workers. */
  upgrade(request: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean;
}

export interface ServerOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string | null;
  /** The read-only monitor token, also accepted on GET /status (null: the workers' token alone). */
  readonly monitorToken?: string | null;
  /** Everything of the welcome except the worker id. */
  readonly welcome: Omit<WelcomeMessage, 'workerId'>;
  readonly limits: Limits;
  /** Time a new connection has to say hello. */
  readonly helloTimeoutMs: number;
  /** Time a welcomed worker has to open its dataset and say ready. */
  readonly readyTimeoutMs: number;
  readonly log: (line: string) => void;
  /** The run's state for GET /status (JSON). */
  readonly status: () => unknown;
  readonly routes?: HttpRoutes | undefined;
  /** Connections still in the handshake, at most; more are closed at once (a flood is bounded). */
  readonly maxPendingHandshakes: number;
  /** Every peer is pinged this often; one that has not answered by the next ping is dropped. */
  readonly heartbeatMs: number;
  /** PEM certificate and key for wss:// and https://, or null for plain ws:// and http://. */
  readonly tls: { readonly cert: Buffer; readonly key: Buffer } | null;
  /**
   * Also listen on this Unix socket (mode 0600), for workers on the same host: a local send costs
   * less than one over loopback TCP. null: TCP only.
   */
  readonly unixSocketPath: string | null;
}

/** Close code for a connection refused because too many handshakes are pending. */
const CLOSE_TRY_AGAIN_LATER = 1013;

type ConnectionState = 'handshake' | 'loading' | 'ready' | 'closed';

/** The largest maxPayload ws honours: it truncates the option to a signed 32-bit integer. */
const MAX_WS_PAYLOAD_BYTES = 2 ** 31 - 1;

/** One worker's connection, from accept to close. */
export class WorkerConnection {
  readonly address: string;
  private admittedId = 0;
  private admittedName: string | null = null;
  state: ConnectionState = 'handshake';
  /** Cleared at every heartbeat, set by the pong (or any message); still clear at the next beat: dead. */
  isAlive = true;
  /** Whether the worker said it may run on a CPU this coordinator may run on (or said nothing). */
  sharesCoordinatorCpu = true;
  /** Bytes of training-step parts received from this worker, and how many parts (its upstream traffic per step: issue #11). */
  partBytes = 0;
  parts = 0;
  /**
   * Workers this connection stands for: 1 for a worker; a relay's ready workers (issue #11 item 3),
   * its weight in a step's assignment. A connection of capacity 0 is ready but given nothing new.
   */
  capacity = 1;
  /** Whether it said ready with a capacity: a relay, named so in the log. */
  isRelay = false;
  /** Which code runs its kernel, as its ready message said ('native avx512f', 'wasm' …), or null when it did not say. */
  kernel: string | null = null;
  /** Bytes of step messages sent to this worker (its downstream traffic per step: issue #11), with a sparse run's params messages. */
  stepBytes = 0;
  /**
   * A sparse run (issue #13): the params version this connection's replica holds once it has read
   * what was sent to it (messages are ordered), −1 before any; the next params go as a delta from it.
   */
  paramsVersion = -1;
  private readonly socket: WebSocket;

  constructor(socket: WebSocket, address: string) {
    this.socket = socket;
    this.address = address;
  }

  /**
   * 0 until the handshake succeeds, then the worker's id (from 1): a connection refused for a bad
   * token or hello never uses up an id (issue #14 item 4).
   */
  get id(): number {
    return this.admittedId;
  }

  /** The host name its hello gave (protocol.ts workerName), or null: for log lines only, never an identity. */
  get name(): string | null {
    return this.admittedName;
  }

  /** The handshake succeeded: the connection becomes worker `id`, named `name`. Once. */
  admit(id: number, name: string | null): void {
    this.admittedId = id;
    this.admittedName = name;
  }

  /** How log lines name it: "worker 3 (host-a)", "relay 2", or "connection" before its handshake. */
  get label(): string {
    if (this.id === 0) return 'connection';
    return `${this.isRelay ? 'relay' : 'worker'} ${this.id}${this.name === null ? '' : ` (${this.name})`}`;
  }

  send(message: CoordinatorToWorker): void {
    if (this.state === 'closed') return;
    this.socket.send(encodeMessage(message));
  }

  /** Sends pre-encoded bytes (a message shared by several workers is encoded once). */
  sendBytes(bytes: Buffer): void {
    if (this.state === 'closed') return;
    this.socket.send(bytes);
  }

  close(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.socket.close(code, closeReason(reason));
    // A peer that ignores the close handshake is cut off; its 'close' event still fires.
    setTimeout(() => this.socket.terminate(), 1000).unref();
  }

  terminate(): void {
    this.socket.terminate();
  }

  ping(): void {
    this.socket.ping();
  }
}

export class WorkerServer {
  private readonly http: Server;
  /** The same endpoints on a Unix socket, for local workers; null without one. */
  private readonly local: Server | null;
  private readonly wss: WebSocketServer;
  private readonly options: ServerOptions;
  private readonly listener: WorkerListener;
  /** Every open connection, in the handshake or past it. */
  private readonly workers = new Set<WorkerConnection>();
  private readonly tokenMatches: (candidate: string) => boolean;
  /** GET /status: the workers' token or the monitor token. */
  private readonly statusTokenMatches: (candidate: string) => boolean;
  private nextId = 1;
  private welcome: Omit<WelcomeMessage, 'workerId'>;
  private readonly heartbeat: NodeJS.Timeout;

  private constructor(http: Server, local: Server | null, wss: WebSocketServer, options: ServerOptions, listener: WorkerListener) {
    this.http = http;
    this.local = local;
    this.wss = wss;
    this.options = options;
    this.listener = listener;
    this.welcome = options.welcome;
    this.tokenMatches = createTokenCheck(options.token);
    const monitorMatches = options.monitorToken == null ? () => false : createTokenCheck(options.monitorToken);
    this.statusTokenMatches = (candidate) => this.tokenMatches(candidate) || monitorMatches(candidate);
    for (const server of local === null ? [http] : [http, local]) {
      // A failed accept (e.g. out of file descriptors under a flood) is an 'error' on the listening server: report it, never crash.
      server.on('error', (error) => options.log(`${server === local ? 'Unix socket' : 'TCP'} server error: ${error.message}`));
      server.on('request', (request, response) => this.httpOnRequest(request, response));
      server.on('upgrade', (request, socket, head) => {
        // Node takes its own 'error' listener off an upgraded socket: from here until ws (or a route)
        // owns it, and in every state after, a reset or write error must not become an uncaught exception (issue 10).
        socket.on('error', rawSocketOnError);
        const url = requestUrl(request);
        if (url === null) {
          socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
          return;
        }
        if (options.routes?.upgrade(request, socket, head, url) === true) return;
        wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
      });
    }
    wss.on('connection', (socket, request) => {
      const { remoteAddress, remotePort } = request.socket;
      this.serverOnConnection(socket, remoteAddress === undefined ? 'local socket' : `${remoteAddress}:${remotePort}`);
    });
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatMs);
    this.heartbeat.unref();
  }

  /** Drops every peer that has not answered since the last beat, then pings the rest. */
  private beat(): void {
    for (const worker of [...this.workers]) {
      // A welcomed worker opening its data may block its event loop for seconds (a multi-GB file
      // read into memory and checked): its silence is bounded by the ready timeout instead, and a
      // closed connection is still noticed at once. Dropping it here made it reload forever.
      if (worker.state === 'loading') continue;
      if (!worker.isAlive) {
        this.options.log(`no heartbeat from ${worker.state === 'ready' ? worker.label : 'connection'} at ${worker.address} for ${this.options.heartbeatMs} ms`);
        worker.terminate();
        this.forget(worker, `no heartbeat for ${this.options.heartbeatMs} ms`);
        continue;
      }
      worker.isAlive = false;
      worker.ping();
    }
  }

  /** Binds and listens; resolves once the port is bound. */
  static async listen(options: ServerOptions, listener: WorkerListener): Promise<WorkerServer> {
    const D = options.limits.features ?? 0;
    // One HTTP server carries the workers' WebSocket upgrades and the plain HTTP endpoints.
    const http = options.tls === null ? createServer() : createTlsServer({ cert: options.tls.cert, key: options.tls.key });
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      // A sparse part carries 12 bytes per touched coordinate (index and value) where a dense one carries 8.
      // ws reads maxPayload as a 32-bit integer (options.maxPayload | 0): a bound past 2^31 − 1 (D = 2^24
      // over 64 chunks) would wrap to a small or negative number and refuse every part (issue #13).
      maxPayload: Math.min(MAX_WS_PAYLOAD_BYTES, Math.max(65_536, maxPartBytes(D, options.limits.maxChunks) * (options.limits.sparse === true ? 2 : 1))),
    });
    await listenOn(http, (done) => http.listen(options.port, options.host, done));
    // The last word on a tokenless server is the address actually bound, not the host's spelling.
    const bound = (http.address() as AddressInfo).address; // a TCP server always has an AddressInfo
    if (options.token === null && !isLoopbackAddress(bound)) {
      await new Promise<void>((resolve) => http.close(() => resolve()));
      throw new ConfigError(`refusing to serve without a token on the non-loopback address ${bound} (--host ${options.host})`);
    }
    let local: Server | null = null;
    const socketPath = options.unixSocketPath;
    if (socketPath !== null) {
      const unixServer = createServer();
      rmSync(socketPath, { force: true });
      await listenOn(unixServer, (done) => unixServer.listen(socketPath, done));
      chmodSync(socketPath, 0o600); // only this user; the token is still required
      local = unixServer;
    }
    return new WorkerServer(http, local, wss, options, listener);
  }

  get port(): number {
    return (this.http.address() as AddressInfo).port; // a TCP server always has an AddressInfo
  }

  /**
   * Ready workers in the order steps are sent: workers on CPUs other than the coordinator's
   * first (a send there wakes a CPU that is free to run it at once), then the rest, each in id order.
   */
  readyWorkers(isIncludingEmptyRelays = false): WorkerConnection[] {
    // A relay with no worker ready (capacity 0) is given nothing new; it may still owe units.
    const ready = [...this.workers].filter((worker) => worker.state === 'ready' && (isIncludingEmptyRelays || worker.capacity > 0));
    return ready.some((worker) => worker.sharesCoordinatorCpu) ? ready.sort((a, b) => Number(a.sharesCoordinatorCpu) - Number(b.sharesCoordinatorCpu)) : ready;
  }

  /** Workers ready behind all connections: a worker counts 1, a relay its capacity. */
  readyCapacity(): number {
    let capacity = 0;
    for (const worker of this.workers) if (worker.state === 'ready') capacity += worker.capacity;
    return capacity;
  }

  /**
   * Sends stop to every connected worker (unless `isStoppingWorkers` is false: a relay leaving lets
   * its workers reconnect elsewhere) and closes the server.
   */
  async close(reason: string, isStoppingWorkers = true): Promise<void> {
    for (const worker of this.workers) {
      if (isStoppingWorkers) worker.send({ kind: 'stop', reason });
      worker.close(CLOSE_NORMAL, reason);
    }
    clearInterval(this.heartbeat);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    for (const server of this.local === null ? [this.http] : [this.http, this.local]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    if (this.options.unixSocketPath !== null) rmSync(this.options.unixSocketPath, { force: true });
  }

  /** GET /healthz (open, for container healthchecks) and GET /status (token-guarded JSON). */
  private httpOnRequest(request: IncomingMessage, response: ServerResponse): void {
    const reply = (code: number, body: unknown): void => {
      response.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      response.end(`${JSON.stringify(body)}\n`);
    };
    const url = requestUrl(request);
    if (url === null) reply(400, { error: 'the request target is not a valid URL' });
    else if (this.options.routes?.request(request, response, url) === true) return;
    else if (request.method !== 'GET') reply(405, { error: 'only GET is served' });
    else if (url.pathname === '/healthz') reply(200, { ok: true });
    else if (url.pathname === '/status') {
      if (this.statusTokenMatches(requestToken(request, url))) reply(200, this.options.status());
      else reply(401, { error: 'missing or wrong token' });
    } else reply(404, { error: `no such endpoint: ${url.pathname}` });
  }

  /**
   * From now on every worker applies this standardization: those connected get it now (a worker
   * still loading gets it after its welcome, in order), those that join later in their welcome.
   */
  setStandardization(stats: { readonly mean: Float64Array; readonly std: Float64Array }): void {
    this.welcome = { ...this.welcome, standardization: { mean: stats.mean, std: stats.std } };
    for (const worker of this.workers) {
      if (worker.state === 'loading' || worker.state === 'ready') worker.send({ kind: 'standardize', mean: stats.mean, std: stats.std });
    }
  }

  /** Drops a worker (timed out or misbehaving); the listener hears workerLost once. */
  drop(worker: WorkerConnection, reason: string): void {
    worker.close(CLOSE_POLICY, reason);
    this.forget(worker, reason);
  }

  private serverOnConnection(socket: WebSocket, address: string): void {
    // First of all: a refused or closing peer can still send an invalid or oversized frame, which
    // ws reports as an 'error' on this socket; without a listener the whole coordinator would exit
    // (issue 10, item 3). The listener below for admitted peers also forgets the worker.
    socket.on('error', webSocketOnError);
    const worker = new WorkerConnection(socket, address);
    let pending = 0;
    for (const other of this.workers) if (other.state === 'handshake') pending++;
    if (pending >= this.options.maxPendingHandshakes) {
      socket.close(CLOSE_TRY_AGAIN_LATER, 'too many pending handshakes');
      setTimeout(() => socket.terminate(), 1000).unref();
      return;
    }
    this.workers.add(worker);
    socket.on('pong', () => {
      worker.isAlive = true;
    });
    const helloTimer = setTimeout(() => this.refuse(worker, 'no hello within the handshake timeout'), this.options.helloTimeoutMs);
    let readyTimer: NodeJS.Timeout | undefined;
    socket.on('message', (data, isBinary) => {
      if (worker.state === 'closed') return;
      worker.isAlive = true;
      if (!isBinary) return this.refuse(worker, 'text frames are not part of the protocol');
      try {
        this.socketOnMessage(worker, toBytes(data), () => {
          clearTimeout(helloTimer);
          readyTimer = setTimeout(() => this.refuse(worker, 'did not open the dataset within the ready timeout'), this.options.readyTimeoutMs);
        });
        if (worker.state === 'ready') clearTimeout(readyTimer);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        // Counted towards a stop only when a worker computed something non-finite: a malformed
        // message is the peer's own fault (closing it is enough), and counting it would let any
        // peer holding the token stop a run by repeating one bad message.
        if (error.isNonFinite && (worker.state === 'loading' || worker.state === 'ready')) this.listener.workerFaulted(worker, error.message, null);
        this.refuse(worker, error.message);
      }
    });
    socket.on('close', () => {
      clearTimeout(helloTimer);
      clearTimeout(readyTimer);
      this.forget(worker, 'disconnected');
    });
    socket.on('error', (error) => this.forget(worker, `socket error: ${error.message}`));
  }

  private socketOnMessage(worker: WorkerConnection, bytes: Uint8Array, onWelcomed: () => void): void {
    const message = decodeWorkerMessage(bytes, this.options.limits);
    if (message.kind === 'part') {
      worker.partBytes += bytes.length;
      worker.parts++;
    }
    switch (message.kind) {
      case 'hello': {
        if (worker.state !== 'handshake') throw new ProtocolError('hello', 'kind', 'sent twice');
        if (message.protocol !== PROTOCOL_VERSION)
          throw new ProtocolError('hello', 'protocol', `speaks protocol ${message.protocol}, this coordinator ${PROTOCOL_VERSION}`);
        if (!this.tokenMatches(message.token)) throw new ProtocolError('hello', 'token', 'wrong or missing token');
        if (!message.kernel.split(',').includes(this.welcome.kernel)) {
          throw new ProtocolError('hello', 'kernel', `offers kernels ${message.kernel}; this run needs ${this.welcome.kernel}`);
        }
        // Math.exp and Math.log1p must give the same bits on every worker (DESIGN.md invariant 6).
        if (nodeMajor(message.node) !== nodeMajor(process.version)) {
          throw new ProtocolError('hello', 'node', `runs Node.js ${message.node}; this run needs major version ${nodeMajor(process.version)} on every worker`);
        }
        worker.sharesCoordinatorCpu = sharesCpu(message.cpus, allowedCpus());
        // Every check passed: only now does the connection take an id.
        worker.admit(this.nextId++, message.name ?? null);
        worker.state = 'loading';
        worker.send({ ...this.welcome, workerId: worker.id });
        onWelcomed();
        return;
      }
      case 'ready': {
        if (worker.state !== 'loading') throw new ProtocolError('ready', 'kind', 'not expected now');
        const w = this.welcome;
        if (message.rows !== w.rows || message.features !== w.features || message.sha256 !== w.sha256) {
          throw new ProtocolError(
            'ready',
            'sha256',
            `the worker's data file differs (${message.rows}×${message.features}, sha256 ${message.sha256.slice(0, 12)}…)`,
          );
        }
        worker.state = 'ready';
        if (message.capacity !== undefined) {
          worker.isRelay = true;
          worker.capacity = message.capacity;
        }
        worker.kernel = message.kernel ?? null;
        const kernel = worker.kernel === null ? '' : ` (kernel: ${worker.kernel})`;
        this.options.log(`${worker.label} joined from ${worker.address}${worker.isRelay ? ` with ${worker.capacity} worker(s)` : ''}${kernel}`);
        this.listener.workerReady(worker);
        return;
      }
      case 'capacity': {
        if (worker.state !== 'ready' || !worker.isRelay) throw new ProtocolError('capacity', 'kind', 'only a ready relay says its capacity');
        const before = worker.capacity;
        if (message.workers === before) return;
        worker.capacity = message.workers;
        this.options.log(`${worker.label} now has ${message.workers} worker(s)`);
        this.listener.workerCapacity(worker, before);
        return;
      }
      case 'part':
        if (worker.state !== 'ready') throw new ProtocolError('part', 'kind', 'sent before the worker was ready');
        this.listener.part(worker, message);
        return;
      case 'passPart':
        if (worker.state !== 'ready') throw new ProtocolError('passPart', 'kind', 'sent before the worker was ready');
        this.listener.passPart(worker, message);
        return;
      case 'leave':
        // One line, by the trainer's workerLost: "worker 2 (host-a) left: said goodbye (SIGTERM)".
        if (worker.state !== 'ready') this.options.log(`${worker.label} from ${worker.address} left before it was ready: said goodbye (${message.reason})`);
        worker.close(CLOSE_NORMAL, 'goodbye');
        this.forget(worker, `said goodbye (${message.reason})`);
        return;
      case 'fail':
        // Before the handshake a fail message is anyone's noise; after it, the trainer judges it.
        if (worker.state === 'loading' || worker.state === 'ready')
          this.listener.workerFaulted(worker, `worker failed: ${message.message}`, message.dataBlock ?? null);
        this.refuse(worker, `worker failed: ${message.message}`);
        return;
      default:
        unhandledKind(message);
    }
  }

  /** Closes a peer with the policy code and reports it once. */
  private refuse(worker: WorkerConnection, reason: string): void {
    if (worker.state === 'closed') return;
    this.options.log(`closing ${worker.state === 'ready' ? worker.label : 'connection'} from ${worker.address}: ${reason}`);
    this.drop(worker, reason);
  }

  private forget(worker: WorkerConnection, reason: string): void {
    if (worker.state === 'closed') return;
    const wasReady = worker.state === 'ready';
    worker.state = 'closed';
    this.workers.delete(worker);
    if (wasReady) this.listener.workerLost(worker, reason);
  }
}

/**
 * The request's target as a URL, or null when it is none: Node's HTTP parser lets through
 * targets such as `http://[` that the URL parser throws on (an uncaught exception before any
 * token check, issue 10).
 */
function requestUrl(request: IncomingMessage): URL | null {
  return URL.canParse(request.url ?? '/', 'http://coordinator') ? new URL(request.url ?? '/', 'http://coordinator') : null;
}

/** A raw socket's error (reset, write after end) ends that socket only; ws or the route reports what matters. */
function rawSocketOnError(this: Duplex): void {
  this.destroy();
}

/** A WebSocket's error (an invalid or oversized frame): ws closes the socket itself; nothing else to do here. */
function webSocketOnError(): void {
  // Deliberately empty: its presence keeps ws from turning the error into an uncaught exception.
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

function nodeMajor(version: string): string {
  return /^v?(\d+)\./.exec(version)?.[1] ?? version;
}

/** A WebSocket close reason is at most 123 bytes of UTF-8: cut on a character boundary. */
function closeReason(reason: string): string {
  let text = reason;
  while (Buffer.byteLength(text) > 123) text = text.slice(0, -1);
  return text;
}

async function listenOn(server: Server, listen: (done: () => void) => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    listen(() => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Whether a worker's CPU list (from its hello) meets the coordinator's CPUs; true when either is unknown. */
export function sharesCpu(workerCpus: string, coordinatorCpus: readonly number[] | null): boolean {
  const cpus = workerCpus === '' ? null : parseCpuList(workerCpus);
  if (cpus === null || coordinatorCpus === null) return true;
  return cpus.some((cpu) => coordinatorCpus.includes(cpu));
}
