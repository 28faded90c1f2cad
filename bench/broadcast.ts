// The coordinator's cost of sending one step to W workers (issue #11 item 2), before and after
// "broadcast once": before, w was encoded once per worker (each message named that worker's
// chunks); now one message carries the whole assignment table and the same bytes go to every
// worker. Measures the sending process's CPU (user + system) per step over real WebSockets on
// 127.0.0.1: encode + the socket writes, plus the W tiny acknowledgements a step waits for (the
// same in both variants). Receivers run in one child process that only acknowledges.
//
// Run: npm run build && node dist/bench/broadcast.js [D ...]   (default D = 1000 and 100000)

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { type WebSocket, WebSocket as WebSocketClient, WebSocketServer } from 'ws';
import { alignedShares } from '../coordinator/assignment.js';
import { encodeMessage } from '../shared/protocol.js';
import { median } from './harness.js';

const SELF = fileURLToPath(import.meta.url);
const STEPS = 400;
const WARMUP_STEPS = 50;
const CHUNKS = 64;
const ROUNDS = 5;
/** The codec dpt uses (shared/protocol.ts), for the old message shape the protocol no longer declares. */
const packr = new Packr({ moreTypes: true, useRecords: false });

type Variant = 'per-worker' | 'once';

async function receivers(url: string, count: number): Promise<void> {
  const sockets = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<WebSocketClient>((resolve, reject) => {
          const socket = new WebSocketClient(url, { perMessageDeflate: false });
          socket.on('open', () => resolve(socket));
          socket.on('error', reject);
        }),
    ),
  );
  for (const socket of sockets) socket.on('message', () => socket.send(Buffer.of(1)));
  process.send?.('ready');
}

/** CPU microseconds (user + system) the sending process spends per step with W receivers. */
async function measure(D: number, W: number, variant: Variant): Promise<number> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise<void>((resolve) => server.on('listening', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  const sockets: WebSocket[] = [];
  const connected = new Promise<void>((resolve) =>
    server.on('connection', (socket) => {
      sockets.push(socket);
      if (sockets.length === W) resolve();
    }),
  );
  const child = fork(SELF, ['receive', `ws://127.0.0.1:${address.port}`, String(W)], { stdio: 'inherit' });
  await connected;
  await new Promise<void>((resolve) => child.once('message', () => resolve()));
  let acks = 0;
  let stepDone: () => void = () => undefined;
  for (const socket of sockets) {
    socket.on('message', () => {
      acks++;
      if (acks === W) stepDone();
    });
  }
  const w = Float64Array.from({ length: D }, (_, j) => Math.sin(j));
  const bounds = alignedShares(CHUNKS, W);
  const table = Uint32Array.from(Array.from({ length: W }, (_, i) => [i, bounds[i]!, bounds[i + 1]!]).flat());
  const ids = Array.from({ length: W }, (_, i) => Uint32Array.from({ length: bounds[i + 1]! - bounds[i]! }, (_, c) => bounds[i]! + c));
  const step = async (n: number): Promise<void> => {
    acks = 0;
    const done = new Promise<void>((resolve) => {
      stepDone = resolve;
    });
    if (variant === 'once') {
      const bytes = encodeMessage({ kind: 'step', step: n, assign: table, theta: w });
      for (const socket of sockets) socket.send(bytes);
    } else {
      for (let i = 0; i < W; i++) sockets[i]!.send(packr.pack({ kind: 'step', step: n, chunks: ids[i], theta: w }));
    }
    await done;
  };
  for (let n = 0; n < WARMUP_STEPS; n++) await step(n);
  const before = process.cpuUsage();
  for (let n = 0; n < STEPS; n++) await step(n);
  const used = process.cpuUsage(before);
  child.kill();
  for (const socket of sockets) socket.terminate();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return (used.user + used.system) / STEPS;
}

async function main(): Promise<void> {
  const dims = process.argv.slice(2).map(Number);
  console.log('D\tW\tper-worker encode: CPU µs/step (median of 5)\tencode once: CPU µs/step (median of 5)');
  for (const D of dims.length > 0 ? dims : [1000, 100_000]) {
    for (const W of [1, 2, 4, 8]) {
      // Interleaved rounds, medians: the machine's other load shifts single rounds.
      const perWorker: number[] = [];
      const once: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        perWorker.push(await measure(D, W, 'per-worker'));
        once.push(await measure(D, W, 'once'));
      }
      console.log(`${D}\t${W}\t${median(perWorker).toFixed(0)}\t${median(once).toFixed(0)}`);
    }
  }
}

if (process.argv[2] === 'receive') await receivers(process.argv[3]!, Number(process.argv[4]));
else await main();
