// Peers that should not be trusted: a wrong token, garbage bytes, a malformed part from an
// authenticated peer. None of them may stop training or change the model.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { supportedKernelIds } from '../../shared/model-kernel.js';
import { encodeMessage, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { killAll, startCli, temporaryDirectory } from '../helpers/cli.js';
import { assignedChunks, leafSubtrees, startFakeWorker } from '../helpers/fake-worker.js';
import { generateData, maxAbsDifference, referenceTrain } from '../helpers/reference.js';

const directory = temporaryDirectory();
const data = generateData(150, 4, 7);
const dataPath = join(directory.path, 'data.csv');
writeFileSync(dataPath, data.csv);
const TOKEN = 'right-token';

afterAll(() => {
  killAll();
  directory.remove();
});

function startCoordinator(out: string, epochs: number, workers = 1, extra: string[] = []) {
  return startCli(
    [
      'coordinator',
      '--data',
      dataPath,
      '--no-shuffle',
      '--no-standardize',
      '--epochs',
      String(epochs),
      '--batch-size',
      '16',
      '--lr',
      '0.3',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      String(workers),
      '--token',
      TOKEN,
      '--out',
      out,
      ...extra,
    ],
    {},
  );
}

/** Opens a raw WebSocket and resolves with how the coordinator closed it. */
function rawPeer(port: string, send: (socket: WebSocket) => void): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}`);
    const timer = setTimeout(() => reject(new Error('the coordinator did not close the peer within 10 s')), 10_000);
    socket.on('open', () => send(socket));
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
    socket.on('error', () => undefined); // the close event reports the outcome
  });
}

describe('the coordinator', () => {
  it('refuses a worker with a wrong or missing token, then trains with the right one', async () => {
    const out = join(directory.path, 'token.json');
    const coordinator = startCoordinator(out, 2);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    const wrong = startCli(['worker', '--connect', url, '--token', 'wrong-token']);
    const missing = startCli(['worker', '--connect', url], { DPT_TOKEN: '' });
    for (const refused of [wrong, missing]) {
      const { code } = await refused.exited(20_000);
      expect(code).toBe(1);
      expect(refused.stderr()).toMatch(/refused this worker: message 'hello', field 'token': wrong or missing token/);
    }
    expect(coordinator.stderr()).toMatch(/closing connection from 127\.0\.0\.1:\d+: message 'hello', field 'token'/);
    const good = startCli(['worker', '--connect', url, '--token', TOKEN]);
    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);
    expect((await good.exited()).code).toBe(0);
  });

  it('closes peers that send garbage or malformed parts, and training still gives the reference model', async () => {
    const epochs = 200;
    const out = join(directory.path, 'hostile.json');
    const coordinator = startCoordinator(out, epochs);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const worker = startCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--token', TOKEN]);
    await coordinator.waitForLine(/epoch 5\/200/);
    const hello = encodeMessage({
      kind: 'hello',
      protocol: PROTOCOL_VERSION,
      token: TOKEN,
      node: process.version,
      kernel: supportedKernelIds().join(','),
      cpus: '',
    });
    const closes = await Promise.all([
      // Garbage before authenticating.
      rawPeer(port as string, (socket) => socket.send(Buffer.from([0xc1, 0x00, 0xff, 0x13]))),
      // A text frame.
      rawPeer(port as string, (socket) => socket.send('{"kind":"hello"}')),
      // A part before the handshake.
      rawPeer(port as string, (socket) =>
        socket.send(encodeMessage({ kind: 'part', step: 0, subtrees: Uint32Array.from([0, 0]), sums: new Float64Array(6), rows: Uint32Array.from([1]) })),
      ),
      // Another protocol version.
      rawPeer(port as string, (socket) =>
        socket.send(encodeMessage({ kind: 'hello', protocol: 99, token: TOKEN, node: process.version, kernel: supportedKernelIds().join(','), cpus: '' })),
      ),
      // Authenticated, then a part with NaN and a wrong length before being ready.
      rawPeer(port as string, (socket) => {
        socket.send(hello);
        socket.once('message', () => {
          socket.send(
            encodeMessage({
              kind: 'part',
              step: 1,
              subtrees: Uint32Array.from([0, 0]),
              sums: new Float64Array(3).fill(Number.NaN),
              rows: Uint32Array.from([1]),
            }),
          );
        });
      }),
    ]);
    for (const close of closes) expect(close.code).toBe(1008);
    expect(closes[3]?.reason).toMatch(/protocol 99/);
    const { code } = await coordinator.exited();
    expect(code, coordinator.stderr()).toBe(0);
    expect((await worker.exited()).code).toBe(0);
    const reference = referenceTrain(data.X, data.Y, { epochs, batchSize: 16, lr: 0.3, l2: 0 });
    const model = JSON.parse(readFileSync(out, 'utf8')) as { weights: number[]; bias: number };
    expect(maxAbsDifference(model.weights, reference.w)).toBeLessThanOrEqual(1e-9);
    expect(Math.abs(model.bias - reference.b)).toBeLessThanOrEqual(1e-9);
  });

  it('serves /healthz openly and /status only with the token', async () => {
    const coordinator = startCoordinator(join(directory.path, 'status.json'), 1, 1);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/status`)).status).toBe(401);
    const status = (await (await fetch(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as Record<string, unknown>;
    expect(status).toMatchObject({ state: 'waiting', step: 0, workers: [] });
    // The coordinator's own CPU time so far (µs): sampled at two steps, its CPU per step.
    expect(Number.isFinite(status.cpuUs) && (status.cpuUs as number) > 0, String(status.cpuUs)).toBe(true);
    expect((await fetch(`${base}/status?token=${TOKEN}`)).status).toBe(200);
    process.kill(coordinator.pid, 'SIGTERM');
    await coordinator.exited();
  });
});

// A part that names one of its chunks twice (issue #10, item 2; since issue #11 a subtree listed
// twice, which the protocol refuses as an overlap; --no-reproducible is now the same tree): the
// peer is closed with the policy code (1008), its chunks are recomputed elsewhere, and the model is
// the fault-free one. Before the fix a merged part counted the repeated chunk's rows twice and the
// run died ("accounted 72 rows of 64"); a per-chunk part was half accepted.
describe('a part that lists a chunk twice', () => {
  const EPOCHS = 20;
  const BATCH = 16;
  for (const reproducible of [true, false]) {
    it(`closes the peer (1008) and recomputes its chunks (${reproducible ? 'reproducible' : '--no-reproducible'})`, async () => {
      const out = join(directory.path, `duplicate-${reproducible}.json`);
      // 8 chunks so both workers get some (the default for B = 16 is one chunk).
      const coordinator = startCoordinator(out, EPOCHS, 2, ['--chunks', '8', ...(reproducible ? [] : ['--no-reproducible'])]);
      const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
      const url = `ws://127.0.0.1:${port}`;
      const worker = startCli(['worker', '--connect', url, '--token', TOKEN]);
      let forged = 0;
      const fake = startFakeWorker(url, TOKEN, (step, welcome) => {
        // Every step it is given: the first chunk twice (as a level-0 subtree), finite sums, the right row counts.
        forged++;
        const mine = assignedChunks(step, welcome.workerId);
        const chunks = [mine[0]!, ...mine];
        const rows = Uint32Array.from(chunks, () => BATCH / welcome.schedule.chunksPerBatch); // step 0: a full batch
        const width = welcome.features + 2;
        const sums = new Float64Array(chunks.length * width);
        return encodeMessage({ kind: 'part', step: step.step, subtrees: leafSubtrees(chunks), sums, rows });
      });
      const closed = await fake.closed;
      expect(forged).toBeGreaterThanOrEqual(1);
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/overlaps or precedes/);
      const { code } = await coordinator.exited(120_000);
      expect(code, coordinator.stderr()).toBe(0);
      expect((await worker.exited()).code).toBe(0);
      expect(coordinator.stderr()).toMatch(/recomputing \d+ chunk\(s\) of step \d+ that worker \d+(?: \([^)]*\))? owed/);
      const reference = referenceTrain(data.X, data.Y, { epochs: EPOCHS, batchSize: BATCH, lr: 0.3, l2: 0 });
      const model = JSON.parse(readFileSync(out, 'utf8')) as { weights: number[]; bias: number };
      expect(maxAbsDifference(model.weights, reference.w)).toBeLessThanOrEqual(1e-9);
      expect(Math.abs(model.bias - reference.b)).toBeLessThanOrEqual(1e-9);
    });
  }
});
