// An honest worker inside the test process whose progress the test controls: it computes every
// part with the worker's own code, but holds the step it is told to hold until released. With no
// other worker and --backup-factor 0, the run provably stands still at that step: a test can act
// mid-run (a late monitor, a killed worker) without racing the run's end, and without SIGSTOP.

import WebSocket from 'ws';
import { supportedKernelIds } from '../../shared/model-kernel.js';
import { shapeOf } from '../../shared/model-shape.js';
import { decodeCoordinatorMessage, encodeMessage, PROTOCOL_VERSION, type StepMessage } from '../../shared/protocol.js';
import type { PartComputer } from '../../worker/compute.js';
import { openPartComputer } from './fake-worker.js';

export interface GatedWorker {
  readonly socket: WebSocket;
  /** Resolves once the step to hold has arrived (and was not answered). */
  readonly held: Promise<number>;
  /** Holds the next step that arrives (or resolves at once with the step already held); resolves with its number. */
  holdNext(): Promise<number>;
  /** Answers the held step (every message for it: a lost worker's chunks come as another) and every step after it. */
  release(): void;
  /** Resolves with the close code once the coordinator closed the connection. */
  readonly closed: Promise<number>;
}

/** Connects and trains honestly until step `holdAt` arrives (or the next one after holdNext()); that one waits for release(). */
export function startGatedWorker(url: string, token: string, holdAt: number): GatedWorker {
  let isHoldingNext = false;
  let holdStep = holdAt;
  const socket = new WebSocket(url, { perMessageDeflate: false });
  let computer: PartComputer | null = null;
  let features: number | null = null;
  let parameters: number | null = null;
  const heldSteps: StepMessage[] = [];
  let isReleased = false;
  let resolveHeld: (step: number) => void = () => undefined;
  const held = new Promise<number>((resolve) => {
    resolveHeld = resolve;
  });
  const closed = new Promise<number>((resolve) => {
    socket.on('close', (code) => resolve(code));
  });
  socket.on('error', () => undefined); // the close event reports the outcome
  socket.on('open', () =>
    socket.send(encodeMessage({ kind: 'hello', protocol: PROTOCOL_VERSION, token, node: process.version, kernel: supportedKernelIds().join(','), cpus: '' })),
  );
  let workerId = -1;
  const answer = (step: StepMessage): void => {
    // compute() returns views of the computer's buffers: encoded at once, before the next step.
    if (computer !== null && socket.readyState === WebSocket.OPEN) socket.send(encodeMessage(computer.compute(step, workerId)));
  };
  // Messages are handled one after the other (opening the data is asynchronous).
  let queue = Promise.resolve();
  socket.on('message', (data: Buffer) => {
    queue = queue.then(async () => {
      const message = decodeCoordinatorMessage(data, { features, parameters, maxChunks: 65_536 });
      if (message.kind === 'welcome') {
        features = message.features;
        parameters = shapeOf(message.model, message.classes, message.features).parameterCount;
        workerId = message.workerId;
        computer = await openPartComputer(message);
        socket.send(encodeMessage({ kind: 'ready', rows: message.rows, features: message.features, sha256: message.sha256 }));
      } else if (message.kind === 'pass' && computer !== null) {
        socket.send(encodeMessage(computer.computePass(message)));
      } else if (message.kind === 'standardize' && computer !== null) {
        computer.standardize(message);
      } else if (message.kind === 'step') {
        if ((message.step === holdStep || isHoldingNext) && !isReleased) {
          holdStep = message.step;
          isHoldingNext = false;
          heldSteps.push(message);
          resolveHeld(message.step);
        } else answer(message);
      }
    });
  });
  return {
    socket,
    held,
    closed,
    holdNext: () => {
      if (heldSteps.length === 0) isHoldingNext = true;
      return held.then(() => heldSteps[0]?.step ?? holdStep);
    },
    release: () => {
      isReleased = true;
      queue = queue.then(() => {
        for (const step of heldSteps.splice(0)) answer(step);
      });
    },
  };
}
