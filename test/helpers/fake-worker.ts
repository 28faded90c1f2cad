// A scripted peer that speaks the worker protocol, for hostile and fault-injection tests: it
// authenticates, opens the dataset the welcome names, answers data passes honestly (with the
// worker's own code), then answers each training step with whatever the test's script says
// (a wrong part, NaN, a replay, half a frame, nothing). startHonestWorker builds on it a worker
// that answers every step honestly and lets a test act on observed state: hold a step (the run
// cannot outrun a test that holds its only pending chunks) and run an action when a step is seen.

import WebSocket from 'ws';
import { openDataFile } from '../../shared/data-file.js';
import { createModelKernel, supportedKernelIds } from '../../shared/model-kernel.js';
import { shapeOf } from '../../shared/model-shape.js';
import { decodeCoordinatorMessage, encodeMessage, PROTOCOL_VERSION, type StepMessage, type WelcomeMessage } from '../../shared/protocol.js';
import { SPARSE_LOGISTIC_KERNEL_ID, SPARSE_SOFTMAX_KERNEL_ID } from '../../shared/sparse-kernel.js';
import { loadSparseRows, openSparseRunData } from '../../shared/sparse-run-data.js';
import { PartComputer } from '../../worker/compute.js';
import { RowStore } from '../../worker/row-store.js';
import { createSparseKernel, SparsePartComputer } from '../../worker/sparse-compute.js';

export interface FakeWorker {
  readonly socket: WebSocket;
  readonly welcome: Promise<WelcomeMessage>;
  readonly closed: Promise<{ code: number; reason: string }>;
}

/** Opens the data a welcome names, in memory, and a PartComputer over it with the welcome's schedule and standardization. */
export async function openPartComputer(message: WelcomeMessage): Promise<PartComputer> {
  const file = await openDataFile(message.dataPath, message.labelColumn ?? undefined);
  const kernel = createModelKernel(message.kernel, shapeOf(message.model, message.classes, message.features), message.classWeights);
  if (kernel === null) throw new Error(`no kernel ${message.kernel}`);
  const computer = new PartComputer(RowStore.open(file.binaryPath, 1 << 30, PartComputer.maxChunkRows(message.schedule), kernel), message.schedule, kernel);
  if (message.standardization !== null) computer.standardize(message.standardization);
  return computer;
}

/** Opens a sparse run's data (issue #13) as a worker does, and a SparsePartComputer over it. */
export async function openSparsePartComputer(message: WelcomeMessage): Promise<SparsePartComputer> {
  if (message.sparse === undefined || message.sparse === null) throw new Error('not a sparse run');
  const kernel = createSparseKernel(message.kernel, shapeOf(message.model, message.classes, message.features), message.classWeights);
  if (kernel === null) throw new Error(`no sparse kernel ${message.kernel}`);
  const data = await openSparseRunData(message.dataPath, message.sparse, message.labelColumn ?? undefined, () => undefined, '--data', 65_535);
  return new SparsePartComputer(loadSparseRows(data, kernel, '--data'), message.schedule, kernel);
}

/**
 * `onStep` returns the bytes to send (or null to stay silent), at once or later (a promise: the
 * messages after it wait); it may also act on the socket itself. `honest()` is the part the real
 * worker would send for that step.
 */
export function startFakeWorker(
  url: string,
  token: string,
  onStep: (step: StepMessage, welcome: WelcomeMessage, socket: WebSocket, honest: () => Buffer) => Buffer | null | Promise<Buffer | null>,
): FakeWorker {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  let welcomed: WelcomeMessage | null = null;
  let computer: PartComputer | null = null;
  let sparse: SparsePartComputer | null = null;
  let resolveWelcome: (message: WelcomeMessage) => void = () => undefined;
  const welcome = new Promise<WelcomeMessage>((resolve) => {
    resolveWelcome = resolve;
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  socket.on('error', () => undefined); // the close event reports the outcome
  socket.on('open', () =>
    socket.send(
      encodeMessage({
        kind: 'hello',
        protocol: PROTOCOL_VERSION,
        token,
        node: process.version,
        kernel: [...supportedKernelIds(), SPARSE_LOGISTIC_KERNEL_ID, SPARSE_SOFTMAX_KERNEL_ID].join(','),
        cpus: '',
      }),
    ),
  );
  // Messages are handled one after the other (opening the data is asynchronous).
  let queue = Promise.resolve();
  socket.on('message', (data: Buffer) => {
    queue = queue.then(() => handle(data));
  });
  const handle = async (data: Buffer): Promise<void> => {
    const message = decodeCoordinatorMessage(data, {
      features: welcomed?.features ?? null,
      parameters: welcomed === null ? null : shapeOf(welcomed.model, welcomed.classes, welcomed.features).parameterCount,
      maxChunks: 65_536,
      sparse: welcomed?.sparse !== undefined && welcomed.sparse !== null,
    });
    if (message.kind === 'welcome') {
      welcomed = message;
      if (message.sparse !== undefined && message.sparse !== null) sparse = await openSparsePartComputer(message);
      else computer = await openPartComputer(message);
      socket.send(encodeMessage({ kind: 'ready', rows: message.rows, features: message.features, sha256: message.sha256 }));
      resolveWelcome(message);
    } else if (message.kind === 'params' && sparse !== null) {
      sparse.applyParams(message);
    } else if (message.kind === 'pass' && sparse !== null) {
      let part = null;
      const run = sparse.startPass(message);
      while (part === null) part = run.advance(Number.POSITIVE_INFINITY);
      socket.send(encodeMessage(part));
    } else if (message.kind === 'pass' && computer !== null) {
      socket.send(encodeMessage(computer.computePass(message)));
    } else if (message.kind === 'standardize' && computer !== null) {
      computer.standardize(message);
    } else if (message.kind === 'step' && welcomed !== null) {
      const stepComputer = computer;
      const sparseComputer = sparse;
      const workerId = welcomed.workerId;
      // A sparse part is computed now, with the replica of this step's version (later params may change it while the step is held).
      const sparsePart = sparseComputer === null ? null : encodeMessage(sparseComputer.compute(message, workerId));
      const honest = (): Buffer => {
        if (sparsePart !== null) return sparsePart;
        if (stepComputer === null) throw new Error('a step before the welcome');
        return encodeMessage(stepComputer.compute(message, workerId));
      };
      const reply = await onStep(message, welcomed, socket, honest);
      if (reply !== null && socket.readyState === WebSocket.OPEN) socket.send(reply);
    }
  };
  return { socket, welcome, closed };
}

export interface HonestWorker extends FakeWorker {
  /** Steps answered so far. */
  answered(): number;
  /**
   * Holds the first step numbered `step` or later that this worker is sent: resolves with its
   * number and leaves it unanswered until release(). With backups off (--backup-factor 0) and a
   * long --step-timeout, a held step stops the run there: a fault injected now lands mid-run.
   */
  holdAt(step: number): Promise<number>;
  release(): void;
  /** Runs `action` once, with the step's number, when this worker is first sent step `step` or a later one. */
  at(step: number, action: (seen: number) => void): void;
}

/** A worker that answers every step with the real worker's part (same code, same bits). */
export function startHonestWorker(url: string, token: string): HonestWorker {
  interface Hold {
    readonly from: number;
    readonly reached: (step: number) => void;
    readonly released: Promise<void>;
    readonly release: () => void;
  }
  let hold: Hold | null = null;
  const actions: { from: number; action: (seen: number) => void }[] = [];
  let answered = 0;
  const fake = startFakeWorker(url, token, async (step, _welcome, _socket, honest) => {
    for (const entry of actions.filter((candidate) => step.step >= candidate.from)) {
      actions.splice(actions.indexOf(entry), 1);
      entry.action(step.step);
    }
    const current = hold;
    if (current !== null && step.step >= current.from) {
      current.reached(step.step);
      await current.released;
    }
    answered++;
    return honest();
  });
  return {
    ...fake,
    answered: () => answered,
    holdAt: (step) =>
      new Promise<number>((reached) => {
        if (hold !== null) throw new Error('a step is already held');
        let release: () => void = () => undefined;
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        hold = { from: step, reached, released, release };
      }),
    release: () => {
      const current = hold;
      hold = null;
      current?.release();
    },
    at: (step, action) => {
      actions.push({ from: step, action });
    },
  };
}

/** The chunks a step's assignment table gives worker `workerId`, ascending. */
export function assignedChunks(step: StepMessage, workerId: number): number[] {
  const chunks: number[] = [];
  for (let e = 0; e < step.assign.length; e += 3) {
    if (step.assign[e] !== workerId) continue;
    for (let c = step.assign[e + 1]!; c < step.assign[e + 2]!; c++) chunks.push(c);
  }
  return chunks;
}

/** Each assigned chunk as its own level-0 subtree: (0, c) pairs. */
export function leafSubtrees(chunks: readonly number[]): Uint32Array {
  return Uint32Array.from(chunks.flatMap((c) => [0, c]));
}
