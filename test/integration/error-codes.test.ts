// Every DPT_ error code is triggered through the real CLI, with its exit code.

import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

/** A port that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('error codes', () => {
  it('DPT_DATASET and DPT_CONFIG exit 2', async () => {
    const bad = join(directory.path, 'bad.csv');
    writeFileSync(bad, 'a,label\n1,7\nx,0\n');
    const dataset = await runCli(['train', '--data', bad]);
    expect([dataset.code, dataset.stderr]).toEqual([2, expect.stringMatching(/\(DPT_DATASET\)$/m)]);
    const emptyToken = join(directory.path, 'token');
    writeFileSync(emptyToken, '\n');
    const config = await runCli(['train', '--data', 'data/breast_cancer.csv', '--token-file', emptyToken]);
    expect([config.code, config.stderr]).toEqual([2, expect.stringMatching(/token-file .*the file is empty \(DPT_CONFIG\)/)]);
  });

  it('DPT_MODEL_FILE exits 2', async () => {
    const result = await runCli(['evaluate', '--model', join(directory.path, 'none.json'), '--data', 'data/breast_cancer.csv']);
    expect([result.code, result.stderr]).toEqual([2, expect.stringMatching(/cannot read the model file.*\(DPT_MODEL_FILE\)/)]);
  });

  it('DPT_NO_WORKERS exits 1 when too few workers join in time', async () => {
    const result = await runCli([
      'coordinator',
      '--data',
      'data/breast_cancer.csv',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '2',
      '--join-timeout',
      '300',
    ]);
    expect([result.code, result.stderr]).toEqual([1, expect.stringMatching(/only 0 of 2 workers joined within 300 ms \(DPT_NO_WORKERS\)/)]);
  });

  it('DPT_COORDINATOR_LOST exits 1 when no coordinator can be reached', async () => {
    const port = await closedPort();
    const result = await runCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--connect-timeout', '500']);
    expect([result.code, result.stderr]).toEqual([1, expect.stringMatching(/cannot reach the coordinator .* for 500 ms \(DPT_COORDINATOR_LOST\)/)]);
  });

  it('DPT_AUTH exits 1 for a refused worker', async () => {
    const coordinator = startCli([
      'coordinator',
      '--data',
      'data/breast_cancer.csv',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      'a',
      '--join-timeout',
      '20000',
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const result = await runCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--token', 'b']);
    expect([result.code, result.stderr]).toEqual([1, expect.stringMatching(/refused this worker.*\(DPT_AUTH\)/)]);
    process.kill(coordinator.pid, 'SIGKILL');
  });

  it('DPT_DIVERGED exits 1, names the step and keeps the last good model', async () => {
    const out = join(directory.path, 'diverged.json');
    const result = await runCli(['train', '--data', 'data/breast_cancer.csv', '--no-standardize', '--lr', '1e306', '--workers', '1', '--out', out]);
    expect([result.code, result.stderr]).toEqual([1, expect.stringMatching(/step \d+: the update made the model non-finite .*\(DPT_DIVERGED\)/)]);
    const model = JSON.parse(readFileSync(out, 'utf8')) as { weights: number[]; bias: number };
    expect(model.weights.every(Number.isFinite)).toBe(true);
    expect(Number.isFinite(model.bias)).toBe(true);
  });

  it('DPT_COORDINATOR_LOST also when the URL answers but is not a coordinator', async () => {
    // (DPT_PROTOCOL, a malformed peer, is covered in test/unit/protocol.test.ts and hostile-peers.test.ts.)
    const server = createServer((socket) => {
      socket.on('error', () => undefined); // the worker may cut its last attempt at --connect-timeout (a reset)
      socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    const result = await runCli(['worker', '--connect', `ws://127.0.0.1:${address.port}`, '--connect-timeout', '500']);
    server.close();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/DPT_COORDINATOR_LOST/);
  });
});
