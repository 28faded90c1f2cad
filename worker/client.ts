// A worker: connects to the coordinator, authenticates, opens the dataset the welcome names,
// and answers every step with the parts it was given. It holds no state that matters, so on a
// lost connection it simply reconnects (with backoff) and is welcomed afresh.

import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { RawData } from 'ws';
import { allowedCpus, formatCpuList } from '../shared/cpus.js';
import { openDataFile } from '../shared/data-file.js';
import { AuthError, ConfigError, CoordinatorLostError, DataBlockError, DatasetError, DptError, ProtocolError } from '../shared/errors.js';
import { watchHeartbeat } from '../shared/heartbeat.js';
import { nativeKernelAddon } from '../shared/kernel-native.js';
import { MAX_DPT_CLASSES } from '../shared/label-cells.js';
import { createModelKernel, type ModelKernel, supportedKernelIds } from '../shared/model-kernel.js';
import { shapeOf } from '../shared/model-shape.js';
import { MAX_PASS_BLOCKS } from '../shared/passes.js';
import {
  CLOSE_NORMAL,
  CLOSE_POLICY,
  type CoordinatorToWorker,
  decodeCoordinatorMessage,
  encodeMessage,
  type Limits,
  type PassPartMessage,
  PROTOCOL_VERSION,
  type StepMessage,
  unhandledKind,
  type WelcomeMessage,
  type WorkerToCoordinator,
  workerName,
} from '../shared/protocol.js';
import { REDUCTION_ID } from '../shared/reduce.js';
import { SPARSE_LOGISTIC_KERNEL_ID, SPARSE_SOFTMAX_KERNEL_ID } from '../shared/sparse-kernel.js';
import { copySparseRows, loadSparseRows, openSparseRunData } from '../shared/sparse-run-data.js';
import { BusyPoll } from './busy-poll.js';
import { PartComputer, type PassRun } from './compute.js';
import { ComputePool } from './compute-pool.js';
import { openRemoteData, resolveDataSource } from './data-source.js';
import { budgetCapNote, inMemoryCap, readMachineMemory } from './memory-limits.js';
import { RemoteRows } from './remote-rows.js';
import { openRemoteSparseData } from './remote-sparse-data.js';
import { RowStore } from './row-store.js';
import { createSparseKernel, SparsePartComputer, type SparsePassRun } from './sparse-compute.js';

export interface WorkerOptions {
  /**
   * ws:// URLs of the coordinator or of relays (issue #11 item 3), tried in turn: each failed
   * attempt or lost session moves to the next, so a worker whose relay dies joins another relay or
   * the coordinator. At least one.
   */
  readonly urls: readonly string[];
  readonly token: string | null;
  /**
   * Local path of the data file, or an http(s):// URL of a .dpt file (read by Range); default: the
   * path the coordinator announces, else the coordinator's GET /data.
   */
  readonly dataPath: string | null;
  /** Give up when no coordinator could be reached for this long (first connect or reconnect). */
  readonly connectTimeoutMs: number;
  /** Ping the coordinator this often; no pong by the next ping means the link is dead: reconnect. */
  readonly heartbeatMs: number;
  /** Extra CA certificate(s) to trust for wss:// (PEM), or null for the system's. */
  readonly ca: Buffer | null;
  /** Hold the data in memory when its rows take at most this many bytes, else read them by offset. */
  readonly memoryBudgetBytes: number;
  /** Compute threads (1: the main thread only); helpers share the kernel's memory. */
  readonly threads: number;
  /** CPUs to pin the helper threads to (Linux), in order; empty: not pinned. */
  readonly threadCpus: readonly number[];
  /** After each answer, keep polling for the next message this long before sleeping (0: off). */
  readonly pollMs: number;
  /** Aborted on SIGTERM: answer what is being computed, say goodbye, return. */
  readonly stop: AbortSignal;
  readonly log: (line: string) => void;
  /** Lines that are shown even with --quiet (e.g. the data will be read from the file instead of held in memory). */
  readonly warn: (line: string) => void;
}

/** How a session with the coordinator ended. */
/** `cutByDeadline`: the connect deadline ended the session, not the peer or the network. */
type SessionEnd = { kind: 'stopped'; reason: string } | { kind: 'lost'; reason: string; wasWelcomed: boolean; cutByDeadline: boolean };

// ws through require, not import: importing this CommonJS package from ESM costs every worker
// process ~60 ms more CPU at start-up (measured: +90 ms against +28 ms; issue #11 item 5).
const { WebSocket } = createRequire(import.meta.url)('ws') as typeof import('ws');

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
/** Bounds one coordinator message; a step carries D float64, so this allows D up to ~8 million. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** Before the welcome, the coordinator's messages are small. */
const PRE_WELCOME_LIMITS: Limits = { features: null, parameters: null, maxChunks: 65_536 };
/** After this worker closes a connection, the peer has this long to answer the close before the socket is cut. */
const CLOSE_GRACE_MS = 2000;
/** Longest stretch a data pass keeps the event loop (issue #10 item 13): well under any heartbeat, so pings are answered. */
const PASS_SLICE_MS = 20;

/** Runs until the coordinator says stop (resolves) or cannot be reached (rejects). */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const capNote = budgetCapNote(options.memoryBudgetBytes, inMemoryCap(readMachineMemory()));
  if (capNote !== null) options.warn(capNote);
  let giveUpAt = Date.now() + options.connectTimeoutMs;
  let backoffMs = FIRST_BACKOFF_MS;
  /** Why the last attempt that failed on its own failed (a refused connection, a bad certificate): the news when time runs out. */
  let lastFailure = '';
  let attempt = 0;
  for (;;) {
    if (options.stop.aborted) return;
    const url = options.urls[attempt % options.urls.length]!; // urls is not empty
    attempt++;
    const end = await runSession(options, url, giveUpAt);
    if (end.kind === 'stopped') {
      options.log(`${end.reason} (peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB)`);
      return;
    }
    if (end.wasWelcomed) {
      giveUpAt = Date.now() + options.connectTimeoutMs;
      backoffMs = FIRST_BACKOFF_MS;
      options.log(
        `lost the coordinator at ${url} (${end.reason}); reconnecting${options.urls.length > 1 ? ` to ${options.urls[attempt % options.urls.length]}` : ''}`,
      );
    }
    if (!end.cutByDeadline) lastFailure = end.reason;
    if (Date.now() >= giveUpAt) {
      // An attempt cut by the deadline says less than the failure before it (e.g. an untrusted certificate).
      const reason = end.cutByDeadline && lastFailure !== '' ? `${lastFailure}; then ${end.reason}` : end.reason;
      throw new CoordinatorLostError(`cannot reach the coordinator at ${options.urls.join(', ')} (${reason}) for ${options.connectTimeoutMs} ms`);
    }
    // Each URL of the list is tried once before the backoff grows: a dead relay is skipped at once.
    if (attempt % options.urls.length !== 0 && !end.wasWelcomed) continue;
    await new Promise<void>((resolve) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(
        () => {
          options.stop.removeEventListener('abort', onAbort);
          resolve();
        },
        backoffMs * (0.5 + Math.random() / 2),
      ); // jitter spreads reconnect storms
      options.stop.addEventListener('abort', onAbort, { once: true });
    });
    backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
  }
}

/**
 * One connection: resolves when it ends; rejects on a fatal error (bad token, wrong data). Every
 * wait has a deadline (issue #10 item 14): the opening handshake and the welcome must both come
 * by `giveUpAt` (the connect timeout), a close is answered within CLOSE_GRACE_MS or the socket is
 * cut, and once welcomed the heartbeat bounds every silence.
 */
function runSession(options: WorkerOptions, url: string, giveUpAt: number): Promise<SessionEnd> {
  return new Promise<SessionEnd>((resolve, reject) => {
    const welcomeWithinMs = Math.max(1, giveUpAt - Date.now());
    const socket = new WebSocket(url, {
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE_BYTES,
      // No handshakeTimeout of ws's own: the welcome timer below bounds the upgrade too, and racing
      // it would report "Opening handshake has timed out" instead of the attempt before it.
      ...(options.ca === null ? {} : { ca: options.ca }),
    });
    /** Why a deadline of this session cut it, if one did (it wins over the socket's own error text). */
    let deadlineReason = '';
    const welcomeTimer = setTimeout(() => {
      deadlineReason = `no welcome from it before the --connect-timeout of ${options.connectTimeoutMs} ms ran out`;
      socket.terminate();
    }, welcomeWithinMs);
    let closeTimer: NodeJS.Timeout | undefined;
    const closeSocket = (code?: number, reason?: string): void => {
      socket.close(code, reason);
      closeTimer ??= setTimeout(() => socket.terminate(), CLOSE_GRACE_MS);
    };
    const heartbeat = watchHeartbeat(socket, options.heartbeatMs, options.log);
    const onStop = (): void => {
      if (settled !== null) return;
      settled = { kind: 'stopped', reason: 'stopped by SIGTERM after answering its last step' };
      if (socket.readyState === WebSocket.OPEN) {
        send({ kind: 'leave', reason: 'SIGTERM' });
        closeSocket(CLOSE_NORMAL, 'goodbye');
      } else socket.terminate();
    };
    options.stop.addEventListener('abort', onStop);
    const poll = new BusyPoll(options.pollMs);
    let limits = PRE_WELCOME_LIMITS;
    let computer: PartComputer | null = null;
    /** A sparse run's computer (issue #13), set instead of `computer`. */
    let sparse: SparsePartComputer | null = null;
    /** The remote file's reader when the rows come over HTTP, else null. */
    let remote: RemoteRows | null = null;
    /** Set when the socket has closed (and the data with it): a fetch that ends later computes nothing. */
    let isClosed = false;
    let workerId = -1;
    let settled: SessionEnd | Error | null = null;
    const send = (message: WorkerToCoordinator): void => socket.send(encodeMessage(message));
    const fail = (error: Error, closeReason: string): void => {
      settled ??= error;
      if (socket.readyState === WebSocket.OPEN) {
        // A block of the data that fails its check is named, so the coordinator can tell bad data from a bad copy.
        send({ kind: 'fail', message: error.message.slice(0, 4000), ...(error instanceof DataBlockError ? { dataBlock: error.block } : {}) });
        closeSocket(CLOSE_POLICY, closeReason);
      } else socket.terminate();
    };

    socket.on('open', () => {
      const cpus = formatCpuList(allowedCpus() ?? []);
      // The host name (a container's name) lets the coordinator's log say which machine a worker id is.
      const name = workerName(hostname());
      send({
        kind: 'hello',
        protocol: PROTOCOL_VERSION,
        token: options.token ?? '',
        node: process.version,
        // The sparse kernels (issue #13) run everywhere: the WebAssembly one or its TypeScript definition, one id.
        kernel: [...supportedKernelIds(), SPARSE_LOGISTIC_KERNEL_ID, SPARSE_SOFTMAX_KERNEL_ID].join(','),
        cpus,
        ...(name === undefined ? {} : { name }),
      });
    });
    // While the dataset is being opened (async: a CSV may need converting) or a data pass is being
    // computed in slices, later messages wait their turn, so answers go out in order; otherwise
    // each message is handled as it arrives (the step path stays synchronous).
    let busy: Promise<void> | null = null;
    socket.on('message', (data, isBinary) => {
      heartbeat.beat();
      if (busy !== null) holdMessages(busy.then(() => handle(data, isBinary)));
      else handle(data, isBinary);
    });
    /** Runs `work` with later messages held back until it settles. */
    const holdMessages = (work: Promise<void>): void => {
      const done = work.finally(() => {
        if (busy === done) busy = null;
      });
      busy = done;
    };
    /** Computes a pass slice by slice, yielding between slices so pings and the close are handled. */
    const computePass = async (run: PassRun | SparsePassRun): Promise<void> => {
      for (;;) {
        if (settled !== null) return;
        let part: PassPartMessage | null;
        try {
          part = run.advance(performance.now() + PASS_SLICE_MS);
        } catch (error) {
          if (!(error instanceof DptError)) throw error;
          fail(error, 'cannot serve this run');
          return;
        }
        if (part !== null) {
          if (socket.readyState === WebSocket.OPEN) send(part);
          return;
        }
        await new Promise<void>((next) => setImmediate(next));
      }
    };
    /** Answers a step, then starts fetching (remote rows) or reading (paged rows) what the next step will likely need. */
    const computeStep = (run: PartComputer, message: StepMessage): void => {
      send(run.compute(message, workerId));
      poll.extend();
      if (remote === null) run.prefetchAfter(message.step, message.assign, workerId);
      else remote.prefetchAfter(message.step, message.assign, workerId);
    };
    /** Waits for remote rows, then runs `work`; a failure of either is this worker's fail message. */
    const fetchThen = async (fetching: Promise<void>, work: () => unknown): Promise<void> => {
      try {
        await fetching;
        if (settled === null && !isClosed) await work();
      } catch (error) {
        // Once the connection is gone its data file is closed too: what failed after that is moot.
        if (isClosed) return;
        if (!(error instanceof DptError)) throw error;
        fail(error, error instanceof ProtocolError ? 'bad message from the coordinator' : 'cannot serve this run');
      }
    };
    const handle = (data: RawData, isBinary: boolean): Promise<void> | undefined => {
      if (settled !== null) return;
      let message: CoordinatorToWorker;
      try {
        if (!isBinary) throw new ProtocolError('?', 'bytes', 'a text frame');
        message = decodeCoordinatorMessage(toBytes(data), limits);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        fail(error, 'bad message from the coordinator');
        return;
      }
      switch (message.kind) {
        case 'welcome': {
          const welcome = message;
          clearTimeout(welcomeTimer);
          const openedAt = performance.now();
          if (welcome.sparse !== undefined && welcome.sparse !== null) {
            const opening = openSparseDataset(welcome, options, url)
              .then((opened) => {
                if (isClosed) return;
                sparse = opened;
                workerId = welcome.workerId;
                limits = {
                  features: welcome.features,
                  parameters: opened.replica.params.v.length + opened.replica.params.bias.length,
                  maxChunks: Math.max(welcome.schedule.chunksPerBatch, MAX_PASS_BLOCKS),
                  sparse: true,
                };
                options.log(
                  `worker ${welcome.workerId}: ${welcome.rows} sparse rows × ${welcome.features} features (${opened.rows.indices.length} non-zeros) ready in ${((performance.now() - openedAt) / 1000).toFixed(2)} s`,
                );
                if (settled === null) send({ kind: 'ready', rows: welcome.rows, features: welcome.features, sha256: welcome.sha256 });
              })
              .catch((error: unknown) => {
                if (!(error instanceof DptError)) throw error;
                fail(error, 'cannot serve this run');
              });
            if (busy === null) holdMessages(opening);
            else return opening;
            return;
          }
          const opening = openDataset(welcome, options, url)
            .then((opened) => {
              if (isClosed) {
                // The connection ended while the data was opening: nobody else will close it.
                opened.computer.close();
                opened.remote?.close();
                return;
              }
              computer = opened.computer;
              remote = opened.remote;
              workerId = welcome.workerId;
              limits = {
                features: welcome.features,
                parameters: opened.computer.shape.parameterCount,
                maxChunks: Math.max(welcome.schedule.chunksPerBatch, MAX_PASS_BLOCKS),
              };
              options.log(
                `worker ${welcome.workerId}: ${welcome.rows} rows × ${welcome.features} features ready (${opened.computer.holding}, ${opened.computer.threads} compute thread${opened.computer.threads === 1 ? '' : 's'}) in ${((performance.now() - openedAt) / 1000).toFixed(2)} s`,
              );
              if (settled === null) send({ kind: 'ready', rows: welcome.rows, features: welcome.features, sha256: welcome.sha256, kernel: opened.kernel });
            })
            .catch((error: unknown) => {
              if (!(error instanceof DptError)) throw error;
              fail(error, 'cannot serve this run');
            });
          if (busy === null) holdMessages(opening);
          else return opening; // handled inside the queue: the queue waits for it
          return;
        }
        case 'params':
          // Decoding refuses params outside a sparse run; a delta for another base fails here, loudly.
          if (sparse === null) {
            fail(new ProtocolError('params', 'kind', 'received before the welcome'), 'protocol violation');
            return;
          }
          try {
            sparse.applyParams(message);
          } catch (error) {
            if (!(error instanceof DptError)) throw error;
            fail(error, 'bad message from the coordinator');
          }
          return;
        case 'step':
        case 'pass':
        case 'standardize':
          if (sparse !== null) {
            const run = sparse;
            try {
              if (message.kind === 'standardize') throw new ProtocolError('standardize', 'kind', 'a sparse run is never standardized');
              if (message.kind === 'pass') {
                const passing = computePass(run.startPass(message));
                if (busy === null) holdMessages(passing);
                else return passing;
              } else {
                send(run.compute(message, workerId));
                poll.extend();
              }
            } catch (error) {
              if (!(error instanceof DptError)) throw error;
              fail(error, error instanceof ProtocolError ? 'bad message from the coordinator' : 'cannot serve this run');
            }
            return;
          }
          // Decoding already refused these before the welcome (no model dimension yet); a
          // message naming chunks or blocks the schedule does not have is refused here.
          if (computer === null) {
            fail(new ProtocolError(message.kind, 'kind', 'received before the welcome'), 'protocol violation');
            return;
          }
          try {
            if (message.kind === 'standardize') computer.standardize(message);
            else if (message.kind === 'pass') {
              const run = computer;
              // A remote file's rows are fetched and loaded first (nothing to wait for once they are).
              const fetching = remote?.preparePass(message) ?? null;
              const passing = fetching === null ? computePass(run.startPass(message)) : fetchThen(fetching, () => computePass(run.startPass(message)));
              if (busy === null) holdMessages(passing);
              else return passing;
            } else {
              const fetching = remote?.prepareStep(message.step, message.assign, workerId) ?? null;
              if (fetching === null) computeStep(computer, message);
              else {
                const run = computer;
                const stepping = fetchThen(fetching, () => computeStep(run, message));
                if (busy === null) holdMessages(stepping);
                else return stepping;
              }
            }
          } catch (error) {
            // Paged rows are checked as they are first read: a bad block surfaces here (DataBlockError).
            if (!(error instanceof DptError)) throw error;
            fail(error, error instanceof ProtocolError ? 'bad message from the coordinator' : 'cannot serve this run');
          }
          return;
        case 'stop':
          settled = { kind: 'stopped', reason: `coordinator stopped this worker: ${message.reason}` };
          closeSocket();
          return;
        default:
          unhandledKind(message);
      }
    };
    let lastError = '';
    socket.on('error', (error) => {
      // The 'close' event follows and reports the end; the error text goes with it.
      lastError = error.message;
    });
    socket.on('close', (code, reasonBytes) => {
      isClosed = true;
      heartbeat.stop();
      clearTimeout(welcomeTimer);
      clearTimeout(closeTimer);
      poll.stop();
      computer?.close();
      if (remote !== null) {
        options.log(`worker ${workerId}: ${remote.summary()}`);
        remote.close();
      }
      options.stop.removeEventListener('abort', onStop);
      const reason = deadlineReason || reasonBytes.toString() || lastError || `connection closed (${code})`;
      if (settled instanceof Error) return reject(settled);
      if (settled !== null) return resolve(settled);
      if (code === CLOSE_POLICY && computer === null && sparse === null) {
        // Refused during the handshake: retrying with the same token cannot help.
        return reject(new AuthError(`the coordinator refused this worker: ${reason}`));
      }
      resolve({ kind: 'lost', reason, wasWelcomed: computer !== null || sparse !== null, cutByDeadline: deadlineReason !== '' });
    });
  });
}

/** What the ready message's kernel says: 'native avx512f' (the addon's build for this CPU), 'wasm' or 'typescript'. */
function kernelImplementationName(kernel: Pick<ModelKernel, 'implementation'>): string {
  if (kernel.implementation !== 'native') return kernel.implementation;
  const isa = nativeKernelAddon()?.isa();
  return isa === undefined ? 'native' : `native ${isa}`;
}

/**
 * Opens the data (converting a CSV once, or reading a remote .dpt file by Range into the cache),
 * checks it is the coordinator's, and standardizes it as told.
 */
async function openDataset(
  welcome: WelcomeMessage,
  options: WorkerOptions,
  url: string,
): Promise<{ computer: PartComputer; remote: RemoteRows | null; kernel: string }> {
  if (welcome.reduction !== REDUCTION_ID) {
    throw new ConfigError(
      `this worker sums parts along reduction ${REDUCTION_ID}; the coordinator asks for ${welcome.reduction}: run the same dpt release on both`,
    );
  }
  const kernel = createModelKernel(welcome.kernel, shapeOf(welcome.model, welcome.classes, welcome.features), welcome.classWeights);
  if (kernel === null) throw new ConfigError(`this worker cannot run the kernel ${welcome.kernel} of the ${welcome.model} model the coordinator asks for`);
  const implementation = kernelImplementationName(kernel);
  options.log(`worker ${welcome.workerId}: kernel ${kernel.id} (${implementation})`);
  const maxChunkRows = PartComputer.maxChunkRows(welcome.schedule);
  // The URL of this session (a coordinator or a relay): /data is fetched from there.
  const source = resolveDataSource(welcome, { ...options, url });
  if (source.kind === 'remote') {
    const file = await openRemoteData(source, welcome);
    options.log(`worker ${welcome.workerId}: ${source.reason}; reading the data from ${file.where} by range, cached in ${file.cachePath}`);
    // Rows are loaded as their blocks arrive: memory holds the rows this worker has used, not the file.
    const store = RowStore.openLazy(file.cachePath, options.memoryBudgetBytes, maxChunkRows, kernel);
    if (store.memoryNote !== null) options.warn(`worker ${welcome.workerId}: ${store.memoryNote}`);
    const computer = new PartComputer(store, welcome.schedule, kernel, computePool(store, kernel, welcome, options));
    if (welcome.standardization !== null) computer.standardize(welcome.standardization);
    return { computer, remote: new RemoteRows(file, store, computer), kernel: implementation };
  }
  const path = source.path;
  // The coordinator has bounded the classes already (--max-classes); here only the format's bound applies.
  const file = await openDataFile(
    path,
    welcome.labelColumn ?? undefined,
    options.log,
    options.dataPath === null ? "the coordinator's --data" : '--data',
    undefined,
    MAX_DPT_CLASSES,
  );
  if (file.rows !== welcome.rows || file.features !== welcome.features || file.identity !== welcome.sha256) {
    throw new DatasetError(
      path,
      undefined,
      undefined,
      `differs from the coordinator's file (${file.rows}×${file.features} here, ${welcome.rows}×${welcome.features} there, or other bytes)`,
    );
  }
  const store = RowStore.open(file.binaryPath, options.memoryBudgetBytes, maxChunkRows, kernel);
  if (store.memoryNote !== null) options.warn(`worker ${welcome.workerId}: ${store.memoryNote}`);
  const computer = new PartComputer(store, welcome.schedule, kernel, computePool(store, kernel, welcome, options));
  if (welcome.standardization !== null) computer.standardize(welcome.standardization);
  return { computer, remote: null, kernel: implementation };
}

/**
 * Opens a sparse run's data (issue #13): the same sparse .dpt the coordinator made of its data
 * (converted here once from a LIBSVM file or a hashed CSV, cached), held in memory, checked to be
 * the coordinator's. A worker without the file (or given an http(s) URL) downloads the
 * coordinator's sparse .dpt whole over /data into its cache, once per host (remote-sparse-data.ts).
 */
async function openSparseDataset(welcome: WelcomeMessage, options: WorkerOptions, url: string): Promise<SparsePartComputer> {
  if (welcome.reduction !== REDUCTION_ID) {
    throw new ConfigError(
      `this worker sums parts along reduction ${REDUCTION_ID}; the coordinator asks for ${welcome.reduction}: run the same dpt release on both`,
    );
  }
  const shape = shapeOf(welcome.model, welcome.classes, welcome.features);
  const kernel = createSparseKernel(welcome.kernel, shape, welcome.classWeights);
  if (kernel === null) throw new ConfigError(`this worker cannot run the sparse kernel ${welcome.kernel} the coordinator asks for`);
  const spec = welcome.sparse ?? null;
  if (spec === null) throw new Error('invariant broken: a dense welcome opened as sparse');
  // The URL of this session (a coordinator or a relay): /data is fetched from there.
  const source = resolveDataSource(welcome, { ...options, url });
  if (source.kind === 'remote') {
    const remote = await openRemoteSparseData(source.source, welcome.sha256, { rows: welcome.rows, features: welcome.features });
    const fetched =
      remote.bytesFetched === 0
        ? `found it in the cache ${remote.cachePath}`
        : `fetched ${remote.bytesFetched} bytes in ${remote.requests} request(s) into ${remote.cachePath}`;
    options.log(`worker ${welcome.workerId}: ${source.reason}; reading the sparse data from ${remote.where} by range: ${fetched}`);
    // Shape and identity were checked against the welcome's before the rows were fetched.
    return new SparsePartComputer(copySparseRows(remote.dataset, kernel), welcome.schedule, kernel);
  }
  const path = source.path;
  const role = options.dataPath === null ? "the coordinator's --data" : '--data';
  const data = await openSparseRunData(path, spec, welcome.labelColumn ?? undefined, options.log, role, MAX_DPT_CLASSES);
  const rows = loadSparseRows(data, kernel, role);
  if (rows.rows !== welcome.rows || rows.dims !== welcome.features || data.identity !== welcome.sha256) {
    throw new DatasetError(
      path,
      undefined,
      undefined,
      `differs from the coordinator's file (${rows.rows}×${rows.dims} here, ${welcome.rows}×${welcome.features} there, or other bytes)`,
    );
  }
  return new SparsePartComputer(rows, welcome.schedule, kernel);
}

/** Compute threads sharing the kernel's memory when asked for and the rows are held there, else null. */
function computePool(store: RowStore, kernel: ModelKernel, welcome: WelcomeMessage, options: WorkerOptions): ComputePool | null {
  const shared = options.threads > 1 ? PartComputer.sharedKernelFor(store, kernel) : null;
  return shared === null ? null : new ComputePool(shared, options.threads, welcome.schedule.chunksPerBatch, options.threadCpus);
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}
