// A scripted peer that speaks the worker protocol, for hostile and fault-injection tests: it
// authenticates, opens the dataset the welcome names, answers data passes honestly (with the
// worker's own code), then answers each training step with whatever the test's script says
// (a wrong part, NaN, a replay, half a frame, nothing).

import WebSocket from 'ws';
import { openDataFile } from '../../shared/data-file.js';
import { createKernelById, supportedKernelIds } from '../../shared/kernel.js';
import { decodeCoordinatorMessage, encodeMessage, PROTOCOL_VERSION, type StepMessage, type WelcomeMessage } from '../../shared/protocol.js';
import { PartComputer } from '../../worker/compute.js';
import { RowStore } from '../../worker/row-store.js';

export interface FakeWorker {
  readonly socket: WebSocket;
  readonly welcome: Promise<WelcomeMessage>;
  readonly closed: Promise<{ code: number; reason: string }>;
}

/** `onStep` returns the bytes to send (or null to stay silent); it may also act on the socket itself. */
export function startFakeWorker(
  url: string,
  token: string,
  onStep: (step: StepMessage, welcome: WelcomeMessage, socket: WebSocket) => Buffer | null,
): FakeWorker {
  const socket = new WebSocket(url, { perMessageDeflate: false });
  let welcomed: WelcomeMessage | null = null;
  let computer: PartComputer | null = null;
  let resolveWelcome: (message: WelcomeMessage) => void = () => undefined;
  const welcome = new Promise<WelcomeMessage>((resolve) => {
    resolveWelcome = resolve;
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  socket.on('error', () => undefined); // the close event reports the outcome
  socket.on('open', () =>
    socket.send(encodeMessage({ kind: 'hello', protocol: PROTOCOL_VERSION, token, node: process.version, kernel: supportedKernelIds().join(','), cpus: '' })),
  );
  // Messages are handled one after the other (opening the data is asynchronous).
  let queue = Promise.resolve();
  socket.on('message', (data: Buffer) => {
    queue = queue.then(() => handle(data));
  });
  const handle = async (data: Buffer): Promise<void> => {
    const message = decodeCoordinatorMessage(data, { features: welcomed?.features ?? null, maxChunks: 65_536 });
    if (message.kind === 'welcome') {
      welcomed = message;
      const file = await openDataFile(message.dataPath, message.labelColumn ?? undefined);
      const kernel = createKernelById(message.kernel);
      if (kernel === null) throw new Error(`no kernel ${message.kernel}`);
      computer = new PartComputer(
        RowStore.open(file.binaryPath, 1 << 30, PartComputer.maxChunkRows(message.schedule), kernel),
        message.schedule,
        message.reproducible,
        kernel,
      );
      if (message.standardization !== null) computer.standardize(message.standardization);
      socket.send(encodeMessage({ kind: 'ready', rows: message.rows, features: message.features, sha256: message.sha256 }));
      resolveWelcome(message);
    } else if (message.kind === 'pass' && computer !== null) {
      socket.send(encodeMessage(computer.computePass(message)));
    } else if (message.kind === 'standardize' && computer !== null) {
      computer.standardize(message);
    } else if (message.kind === 'step' && welcomed !== null) {
      const reply = onStep(message, welcomed, socket);
      if (reply !== null && socket.readyState === WebSocket.OPEN) socket.send(reply);
    }
  };
  return { socket, welcome, closed };
}
