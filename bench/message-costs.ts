// The constants of the cost model in docs/scaling.md (issue #11 item 6): what one step message and
// one part cost the coordinator, per message and per byte, each measured alone.
//  1. In process, one core: encode a step message (w of D float64 and a 64-worker assignment table),
//     decode and check one part (D + 2 float64), keep it in the reduction tree and combine it
//     (TreeParts.accept + its share of reduce), and the update of w.
//  2. Over a real WebSocket on 127.0.0.1 between two processes: the sending process's CPU (user +
//     system) per round of "S bytes down, 1 byte back" and "1 byte down, S bytes back", so the
//     socket's per-message and per-byte costs of a send and of a receive can be told apart.
//
// Run: npm run build && node dist/bench/message-costs.js [--quick]   (writes bench/results/message-costs.json)

import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type WebSocket, WebSocket as WebSocketClient, WebSocketServer } from 'ws';
import { decodeWorkerMessage, encodeMessage } from '../shared/protocol.js';
import { TreeParts } from '../shared/reduce.js';
import { formatNumber, formatTable, median, RESULTS_DIR, writeJson } from './harness.js';

const SELF = fileURLToPath(import.meta.url);
const CHUNKS = 64;
const DIMS = [10, 1000, 100_000, 1_000_000];
const ROUNDS = 5;

/**
 * CPU microseconds (user + system) per call of `fn`: the median of ROUNDS rounds of about `roundMs`
 * of CPU, after a warm-up. CPU time, not wall time: on a shared machine whose load is far above
 * its CPU count, wall time measures the queue.
 */
function timePerCallUs(fn: () => void, roundMs: number): number {
  const cpuUs = (): number => {
    const used = process.cpuUsage();
    return used.user + used.system;
  };
  const round = (budgetMs: number): number => {
    let calls = 0;
    const started = cpuUs();
    let elapsed = 0;
    do {
      fn();
      calls++;
      elapsed = cpuUs() - started;
    } while (elapsed < budgetMs * 1000);
    return elapsed / calls;
  };
  round(roundMs);
  return median(Array.from({ length: ROUNDS }, () => round(roundMs)));
}

interface CodecCosts {
  readonly D: number;
  readonly stepBytes: number;
  readonly partBytes: number;
  readonly encodeStepUs: number;
  readonly decodePartUs: number;
  /** accept one leaf part + 1/64 of reducing 64 of them. */
  readonly combinePartUs: number;
  readonly updateUs: number;
}

function measureCodec(D: number, roundMs: number): CodecCosts {
  const theta = Float64Array.from({ length: D + 1 }, (_, j) => Math.sin(j));
  const assign = Uint32Array.from({ length: 3 * CHUNKS }, (_, i) => (i % 3 === 0 ? i / 3 : Math.floor(i / 3) + (i % 3) - 1));
  const stepBytes = encodeMessage({ kind: 'step', step: 123_456, assign, theta }).length;
  const sums = Float64Array.from({ length: D + 2 }, (_, i) => Math.cos(i));
  const part = encodeMessage({ kind: 'part', step: 123_456, subtrees: Uint32Array.of(0, 5), sums, rows: Uint32Array.of(32) });
  const limits = { features: D, parameters: D + 1, maxChunks: CHUNKS };
  const encodeStepUs = timePerCallUs(() => encodeMessage({ kind: 'step', step: 123_456, assign, theta }), roundMs);
  const decodePartUs = timePerCallUs(() => decodeWorkerMessage(part, limits), roundMs);
  const tree = new TreeParts(CHUNKS, D + 2);
  const out = new Float64Array(D + 2);
  const combineAllUs = timePerCallUs(() => {
    tree.reset(CHUNKS);
    for (let c = 0; c < CHUNKS; c++) tree.accept(0, c, sums, 0);
    tree.reduce(out);
  }, roundMs);
  // As coordinator/trainer.ts commits: into a spare buffer, then swapped.
  let model = new Float64Array(D);
  let spare = new Float64Array(D);
  const updateUs = timePerCallUs(() => {
    for (let j = 0; j < D; j++) spare[j] = model[j]! - 0.1 * (out[j]! / 2048);
    [model, spare] = [spare, model];
  }, roundMs);
  return { D, stepBytes, partBytes: part.length, encodeStepUs, decodePartUs, combinePartUs: combineAllUs / CHUNKS, updateUs };
}

interface SocketCosts {
  readonly bytes: number;
  /** CPU µs of the coordinator's side per round: send `bytes`, receive 1 byte. */
  readonly sendRoundUs: number;
  /** CPU µs per round: send 1 byte, receive `bytes`. */
  readonly receiveRoundUs: number;
}

/** The peer: answers every message with `answerBytes` bytes. */
async function peer(url: string): Promise<void> {
  const socket = new WebSocketClient(url, { perMessageDeflate: false, maxPayload: 1 << 30 });
  let answer = Buffer.alloc(1);
  socket.on('message', (data: Buffer) => {
    // A message of 9 bytes starting with 'A' sets the answer size; anything else is answered.
    if (data.length === 9 && data[0] === 65) answer = Buffer.alloc(Number(data.readBigUInt64LE(1)), 7);
    socket.send(answer);
  });
  socket.on('close', () => process.exit(0));
}

async function measureSockets(sizes: readonly number[], rounds: number): Promise<SocketCosts[]> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 30 });
  await new Promise<void>((resolve) => server.on('listening', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('unexpected address');
  const connected = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
  const child = fork(SELF, ['peer', `ws://127.0.0.1:${address.port}`], { stdio: 'inherit' });
  const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
  try {
    const socket = await connected;
    let onAnswer: () => void = () => undefined;
    socket.on('message', () => onAnswer());
    const roundTrip = (message: Buffer): Promise<void> =>
      new Promise((resolve) => {
        onAnswer = resolve;
        socket.send(message);
      });
    const setAnswer = async (bytes: number): Promise<void> => {
      const message = Buffer.alloc(9);
      message[0] = 65;
      message.writeBigUInt64LE(BigInt(bytes), 1);
      await roundTrip(message);
    };
    const cpuPerRound = async (message: Buffer, count: number): Promise<number> => {
      for (let i = 0; i < Math.min(50, count); i++) await roundTrip(message);
      const before = process.cpuUsage();
      for (let i = 0; i < count; i++) await roundTrip(message);
      const used = process.cpuUsage(before);
      return (used.user + used.system) / count;
    };
    const results: SocketCosts[] = [];
    const one = Buffer.alloc(2, 1); // not 9 bytes: never mistaken for a size message
    for (const bytes of sizes) {
      const count = Math.max(20, Math.round(rounds / Math.max(1, bytes / 65_536)));
      const payload = Buffer.alloc(bytes === 9 ? 10 : bytes, 3);
      const send: number[] = [];
      const receive: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        await setAnswer(1);
        send.push(await cpuPerRound(payload, count));
        await setAnswer(bytes);
        receive.push(await cpuPerRound(one, count));
      }
      results.push({ bytes, sendRoundUs: median(send), receiveRoundUs: median(receive) });
    }
    socket.close();
    return results;
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
    server.close();
  }
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const codec = DIMS.map((D) => measureCodec(D, quick ? 20 : 60));
  console.log('== the coordinator step path in process (one core), µs; 64 chunks, one leaf part ==');
  console.log(
    formatTable(
      ['D', 'step B', 'part B', 'encode step', 'decode+check part', 'combine part', 'update'],
      codec.map((c) => [
        String(c.D),
        formatNumber(c.stepBytes),
        formatNumber(c.partBytes),
        formatNumber(c.encodeStepUs),
        formatNumber(c.decodePartUs),
        formatNumber(c.combinePartUs),
        formatNumber(c.updateUs),
      ]),
    ),
  );
  const sizes = [16, ...DIMS.map((D) => 8 * (D + 2) + 40)];
  const sockets = await measureSockets(sizes, quick ? 500 : 2000);
  console.log('\n== one WebSocket on 127.0.0.1, this process’s CPU per round, µs (median of 5) ==');
  console.log(
    formatTable(
      ['bytes', 'send S, receive 1', 'send 1, receive S'],
      sockets.map((s) => [formatNumber(s.bytes), formatNumber(s.sendRoundUs), formatNumber(s.receiveRoundUs)]),
    ),
  );
  const out = join(RESULTS_DIR, 'message-costs.json');
  writeJson(out, { date: new Date().toISOString(), node: process.version, quick, codec, sockets });
  console.log(`\nwrote ${out}`);
}

if (process.argv[2] === 'peer') await peer(process.argv[3]!);
else await main();
