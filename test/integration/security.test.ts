// Security and hostile input (issue 4): tokens on non-loopback addresses, kernel and Node.js
// checks, TLS, a connection flood, and a protocol fuzzer running against a real training.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { supportedKernelIds } from '../../shared/kernel.js';
import { encodeMessage, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startFakeWorker } from '../helpers/fake-worker.js';
import { modelHash } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

const TOKEN = 'security-token';
const FLAGS = ['--data', 'data/breast_cancer.csv', '--batch-size', '50', '--lr', '0.3', '--seed', '3'];

async function referenceHash(epochs: number): Promise<string> {
  const out = join(directory.path, `reference-${epochs}.json`);
  const result = await runCli(['train', ...FLAGS, '--epochs', String(epochs), '--workers', '2', '--out', out]);
  expect(result.code, result.stderr).toBe(0);
  return modelHash(out);
}

/** Opens a WebSocket, runs `act`, resolves with how the peer was closed. */
function connect(url: string, act: (socket: WebSocket) => void, options: WebSocket.ClientOptions = {}): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, ...options });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('not closed within 15 s'));
    }, 15_000);
    socket.on('open', () => act(socket));
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
    socket.on('error', () => undefined); // close reports the outcome
  });
}

function rssMegabytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1]) / 1024;
}

describe('authentication', () => {
  it('generates and prints a token when listening on a non-loopback address without one', async () => {
    const coordinator = startCli(['coordinator', ...FLAGS, '--epochs', '2', '--host', '0.0.0.0', '--port', '0']);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/0\.0\.0\.0:(\d+)/);
    const [, token] = await coordinator.waitForLine(/^token (\S+)$/m);
    const url = `ws://127.0.0.1:${port}`;
    const refused = await runCli(['worker', '--connect', url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/wrong or missing token/);
    const worker = startCli(['worker', '--connect', url, '--token', token as string]);
    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);
    expect((await worker.exited()).code).toBe(0);
  });

  it('refuses a worker with another kernel or another Node.js major version', async () => {
    const coordinator = startCli(['coordinator', ...FLAGS, '--host', '127.0.0.1', '--port', '0', '--token', TOKEN, '--join-timeout', '30000']);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    const kernel = await connect(url, (s) =>
      s.send(encodeMessage({ kind: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, node: process.version, kernel: 'other-kernel', cpus: '' })),
    );
    expect(kernel).toEqual({ code: 1008, reason: expect.stringMatching(/offers kernels other-kernel; this run needs/) });
    const node = await connect(url, (s) =>
      s.send(encodeMessage({ kind: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, node: 'v18.19.0', kernel: supportedKernelIds().join(','), cpus: '' })),
    );
    expect(node).toEqual({ code: 1008, reason: expect.stringMatching(/runs Node\.js v18\.19\.0; this run needs major version/) });
    process.kill(coordinator.pid, 'SIGKILL');
  });
});

describe('TLS', () => {
  it('trains over wss:// with a CA the worker trusts, and refuses an untrusted certificate', async () => {
    const key = join(directory.path, 'key.pem');
    const cert = join(directory.path, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      {
        stdio: 'ignore',
      },
    );
    const out = join(directory.path, 'tls.json');
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--epochs',
      '3',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--tls-cert',
      cert,
      '--tls-key',
      key,
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on wss:\/\/127\.0\.0\.1:(\d+)/);
    const untrusted = await runCli(['worker', '--connect', `wss://127.0.0.1:${port}`, '--token', TOKEN, '--connect-timeout', '500']);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/self[- ]signed certificate/);
    const worker = startCli(['worker', '--connect', `wss://127.0.0.1:${port}`, '--token', TOKEN, '--ca', cert]);
    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);
    expect((await worker.exited()).code).toBe(0);
    expect(modelHash(out)).toBe(await referenceHash(3));
  });
});

describe('hostile input during a real training', () => {
  it('bounds a connection flood and still trains the reference model', async () => {
    const out = join(directory.path, 'flood.json');
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--epochs',
      '40',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--workers',
      '2',
      '--max-pending-handshakes',
      '16',
      '--handshake-timeout',
      '1000',
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    // 200 connections that never authenticate: at most 16 wait, the rest are turned away at once.
    const flood = await Promise.all(Array.from({ length: 200 }, () => connect(url, () => undefined)));
    const codes = flood.map((close) => close.code);
    expect(codes.filter((code) => code === 1013).length).toBeGreaterThanOrEqual(200 - 16);
    expect(codes.filter((code) => code === 1008).length).toBeGreaterThan(0); // the waiting ones time out
    expect(coordinator.stderr()).toMatch(/no hello within the handshake timeout/);
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);
    expect(modelHash(out)).toBe(await referenceHash(40));
  });

  it('survives a fuzzer sending thousands of malformed, oversized and well-formed-but-wrong messages', async () => {
    const epochs = 2000;
    const out = join(directory.path, 'fuzz.json');
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--epochs',
      String(epochs),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--workers',
      '2',
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    await coordinator.waitForLine(/epoch 3\/2000/);
    let isTraining = true;
    void coordinator.exited(240_000).then(() => {
      isTraining = false;
    });
    const rssBefore = rssMegabytes(coordinator.pid);
    let random = 2024;
    const next = (n: number): number => {
      random = (Math.imul(random, 1_103_515_245) + 12_345) >>> 0;
      return random % n;
    };
    const validPart = encodeMessage({
      kind: 'part',
      step: 0,
      chunks: Uint32Array.from([0]),
      merged: false,
      sums: new Float64Array(32),
      rows: Uint32Array.from([4]),
    });
    const generators: (() => Buffer | string)[] = [
      () => Buffer.from(Array.from({ length: next(2000) }, () => next(256))), // random bytes
      () => validPart.subarray(0, next(validPart.length)), // truncated
      () => Buffer.alloc(2 * 1024 * 1024, 7), // oversized: beyond maxPayload
      () => 'not binary', // a text frame
      () =>
        encodeMessage({ kind: 'hello', protocol: PROTOCOL_VERSION, token: 'guess', node: process.version, kernel: supportedKernelIds().join(','), cpus: '' }), // wrong token
      () => Buffer.from(encodeMessage({ kind: 'fail', message: 'x' }).map((byte, i) => (i === 3 ? next(256) : byte))), // a flipped byte
    ];
    let messages = 0;
    // 1. Authenticated peers that join and then send wrong parts: wrong step ids (silently
    // discarded), wrong lengths, negative or wrong row counts, chunks they were not given, replays.
    for (let peer = 0; peer < 20 && isTraining; peer++) {
      let answered = 0;
      const fake = startFakeWorker(url, TOKEN, (step, welcome, socket) => {
        const width = welcome.features + 2;
        const part = (fields: Partial<{ step: number; chunks: Uint32Array; sums: Float64Array; rows: Uint32Array }>): Buffer =>
          encodeMessage({
            kind: 'part',
            step: fields.step ?? step.step,
            chunks: fields.chunks ?? step.chunks,
            merged: false,
            sums: fields.sums ?? new Float64Array(step.chunks.length * width),
            rows: fields.rows ?? Uint32Array.from(step.chunks, () => 1),
          });
        for (let i = 0; i < 100; i++) {
          socket.send(part({ step: step.step + 1 + next(1000) })); // wrong step: discarded, connection kept
          messages++;
        }
        answered++;
        messages++;
        switch (peer % 4) {
          case 0:
            return part({ sums: new Float64Array(width - 1) }); // wrong vector length
          case 1:
            return part({ chunks: Uint32Array.from([999]) }); // a chunk it was not given
          case 2:
            return encodeMessage({
              kind: 'part',
              step: step.step,
              chunks: step.chunks,
              merged: false,
              sums: new Float64Array(step.chunks.length * width),
              rows: Int32Array.from(step.chunks, () => -1) as never,
            }); // negative rows
          default:
            return answered > 1 ? validPart : part({}); // wrong row counts, then a replay
        }
      });
      const close = await fake.closed;
      if (isTraining) expect(close.code, `peer ${peer}: ${close.reason}`).toBe(1008);
    }
    // 2. Unauthenticated garbage: every connection is closed by the coordinator.
    for (let round = 0; round < 30 && isTraining; round++) {
      await Promise.all(
        Array.from({ length: 10 }, () =>
          connect(url, (socket) => {
            for (let i = 0; i < 10; i++) {
              const generate = generators[next(generators.length)] as () => Buffer | string;
              socket.send(generate());
              messages++;
            }
          }),
        ),
      );
    }
    expect(messages, coordinator.stderr().slice(-3000)).toBeGreaterThan(2000);
    expect(isTraining, 'the training ended before the fuzzer did: make the run longer').toBe(true);
    const rssAfter = rssMegabytes(coordinator.pid);
    const { code } = await coordinator.exited(180_000);
    expect(code, coordinator.stderr()).toBe(0);
    expect(modelHash(out)).toBe(await referenceHash(epochs));
    // Memory stays bounded: nothing of the fuzz is kept.
    expect(rssAfter).toBeLessThan(rssBefore + 100);
    expect(rssAfter).toBeLessThan(300);
  }, 240_000);
});
