// The transport half of the floor: a raw WebSocket star round between a coordinator and W
// worker processes on this machine, with nothing of dpt in it. Each round the coordinator sends
// D + 1 float64 to every worker, each answers with D + 1 float64, and the round ends when the last
// answer is in. Same transport and placement as `dpt train` (ws over a Unix socket, processes
// pinned by cli/cpu-pinning.ts), so "dpt step − raw round" is what dpt adds.
//
// Run as a module (measureRawStar), or as `node raw-star.js worker <socket> <bytes>` for a worker.

import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type WebSocket, WebSocket as WebSocketClient, WebSocketServer } from 'ws';
import { planCpus } from '../cli/cpu-pinning.js';
import { allowedCpus, hasTaskset, pinnedCommand, pinProcess } from '../shared/cpus.js';
import { median } from './harness.js';

const SELF = fileURLToPath(import.meta.url);
const TIMEOUT_MS = 60_000;

export interface RawStarResult {
  readonly rounds: number;
  readonly medianUs: number;
  readonly p90Us: number;
}

/**
 * Median round time of a star with W workers and D + 1 float64 each way, over `seconds` of
 * rounds after `warmupSeconds`. The calling process is the coordinator; it is pinned as dpt
 * train pins its own (and unpinned again at the end: the bench goes on to other work).
 */
export async function measureRawStar(W: number, D: number, seconds: number, warmupSeconds: number): Promise<RawStarResult> {
  const bytes = 8 * (D + 1);
  const socketPath = join(tmpdir(), `dpt-raw-star-${process.pid}-${Date.now()}.sock`);
  const cpus = allowedCpus();
  const plan = cpus !== null && hasTaskset() ? planCpus(cpus, W) : null;
  if (plan !== null) pinProcess(process.pid, plan.coordinator);
  const http = createServer();
  const server = new WebSocketServer({ server: http, perMessageDeflate: false });
  const children: ChildProcess[] = [];
  const timer = setTimeout(() => {
    for (const child of children) child.kill('SIGKILL');
  }, TIMEOUT_MS);
  try {
    await new Promise<void>((resolve) => http.listen(socketPath, resolve));
    const peers: WebSocket[] = [];
    const connected = new Promise<void>((resolve) =>
      server.on('connection', (socket) => {
        peers.push(socket);
        if (peers.length === W) resolve();
      }),
    );
    for (let i = 0; i < W; i++) {
      const args = [SELF, 'worker', socketPath, String(bytes)];
      const { command, args: argv } = plan === null ? { command: process.execPath, args } : pinnedCommand(plan.workers[i]!, process.execPath, args);
      children.push(spawn(command, argv, { stdio: ['ignore', 'ignore', 'inherit'] }));
    }
    await connected;
    const message = Buffer.from(new Float64Array(D + 1).fill(0.5).buffer);
    const sum = new Float64Array(D + 1);
    const times: number[] = [];
    await new Promise<void>((resolve) => {
      let pending = 0;
      let roundStarted = 0;
      const started = performance.now();
      const send = (): void => {
        pending = W;
        roundStarted = performance.now();
        for (const peer of peers) peer.send(message);
      };
      for (const peer of peers) {
        peer.on('message', (data: Buffer) => {
          const answer = new Float64Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length));
          for (let j = 0; j <= D; j++) sum[j]! += answer[j]!;
          if (--pending > 0) return;
          const now = performance.now();
          if (now - started >= warmupSeconds * 1000) times.push((now - roundStarted) * 1000);
          if (now - started >= (warmupSeconds + seconds) * 1000) resolve();
          else send();
        });
      }
      send();
    });
    const sorted = [...times].sort((a, b) => a - b);
    return { rounds: times.length, medianUs: median(times), p90Us: sorted[Math.floor(sorted.length * 0.9)] ?? Number.NaN };
  } finally {
    clearTimeout(timer);
    for (const child of children) child.kill('SIGKILL');
    server.close();
    http.close();
    if (cpus !== null && plan !== null) pinProcess(process.pid, cpus);
  }
}

/** A raw worker: answers every message with `bytes` bytes. */
function runWorker(socketPath: string, bytes: number): void {
  const socket = new WebSocketClient(`ws+unix://${socketPath}:/`, { perMessageDeflate: false });
  const answer = Buffer.from(new Float64Array(bytes / 8).fill(0.25).buffer);
  socket.on('message', () => socket.send(answer));
  socket.on('close', () => process.exit(0));
  socket.on('error', () => process.exit(1));
}

if (process.argv[2] === 'worker' && process.argv[1] === SELF) runWorker(process.argv[3]!, Number(process.argv[4]));
