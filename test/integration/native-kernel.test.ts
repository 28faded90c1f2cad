// Native and WebAssembly workers in one run (issue #15 item 2): both run the lanes8 order under one
// kernel id, so a run of two WebAssembly workers, a run of two native workers and a run with one
// of each write the same model bits and the same loss stream; the worker's log says which
// implementation it runs. DPT_NATIVE=require: a machine without the built addon fails this test.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type * as SyntheticModule from '../../shared/synthetic.js';
import { killAll, REPO, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';

const dist = (path: string): Promise<unknown> => import(join(REPO, 'dist', path));
const { generateDataset } = (await dist('shared/synthetic.js')) as typeof SyntheticModule;

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

const TOKEN = 'native-kernel-token';
// D = 45: the 8-lane prefix (40) and a tail of 5; shuffled rows, class weights, 8 chunks a step.
const D = 45;
const dataPath = generateDataset({ rows: 6_000, features: D, seed: 11 }, join(directory.path, 'data.dpt'), 'dpt').path;
const FLAGS = ['--data', dataPath, '--epochs', '3', '--batch-size', '256', '--chunks', '8', '--lr', '0.2', '--val-split', '0.1', '--class-weight', 'balanced'];

interface Result {
  readonly hash: string;
  readonly losses: number[];
}

async function train(name: string, env: Record<string, string>): Promise<Result> {
  const out = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const result = await runCli(['train', ...FLAGS, '--workers', '2', '--out', out, '--metrics', metrics], env, 180_000);
  expect(result.code, result.stderr).toBe(0);
  return { hash: modelHash(out), losses: stepLosses(metrics) };
}

describe('the native kernel in training', () => {
  it('gives all-wasm, all-native and mixed runs the same model SHA-256 and loss stream', async () => {
    const wasm = await train('wasm', { DPT_NATIVE: 'off' });
    const native = await train('native', { DPT_NATIVE: 'require' });
    // dpt train's workers inherit DPT_NATIVE: with require, a worker without the addon fails the run.

    // One coordinator, one worker of each kind, on loopback.
    const out = join(directory.path, 'mixed.json');
    const metrics = join(directory.path, 'mixed.jsonl');
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--workers',
      '2',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--out',
      out,
      '--metrics',
      metrics,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/, 60_000);
    const url = `ws://127.0.0.1:${port}`;
    const wasmWorker = startCli(['worker', '--connect', url, '--token', TOKEN], { DPT_NATIVE: 'off' });
    const nativeWorker = startCli(['worker', '--connect', url, '--token', TOKEN], { DPT_NATIVE: 'require' });
    await wasmWorker.waitForLine(/kernel lanes8-r4-f64acc-1 \(wasm\)/, 60_000);
    await nativeWorker.waitForLine(/kernel lanes8-r4-f64acc-1 \(native (avx512f|avx2|baseline)\)/, 60_000);
    expect((await coordinator.exited(180_000)).code, coordinator.stderr()).toBe(0);
    // The coordinator's log says which code each worker runs (its ready message), one of each.
    const joined = [...coordinator.stderr().matchAll(/^worker \d+(?: \([^)]*\))? joined from \S+ \(kernel: ([a-z0-9 ]+)\)$/gm)].map((match) => match[1]);
    expect(joined.sort()).toEqual([expect.stringMatching(/^native (avx512f|avx2|baseline)$/), 'wasm']);
    await Promise.all([wasmWorker.exited(60_000), nativeWorker.exited(60_000)]);
    const mixed = { hash: modelHash(out), losses: stepLosses(metrics) };

    expect(wasm.losses.length).toBe(3 * Math.ceil(5_400 / 256));
    expect(native).toEqual(wasm);
    expect(mixed).toEqual({ hash: wasm.hash, losses: wasm.losses });
  }, 600_000);

  it('gives a native worker with 2 compute threads the bits of a WebAssembly worker with one', async () => {
    // B = 4096: 4096 × (45 + 40) work units, over the split threshold: the helper thread runs the native kernel too.
    const run = async (name: string, env: Record<string, string>, threads: string): Promise<{ hash: string; losses: number[] }> => {
      const out = join(directory.path, `${name}.json`);
      const metrics = join(directory.path, `${name}.jsonl`);
      const flags = [...FLAGS.filter((flag, i) => flag !== '--batch-size' && FLAGS[i - 1] !== '--batch-size'), '--batch-size', '4096'];
      const result = await runCli(['train', ...flags, '--workers', '1', '--threads', threads, '--out', out, '--metrics', metrics], env, 180_000);
      expect(result.code, result.stderr).toBe(0);
      return { hash: modelHash(out), losses: stepLosses(metrics) };
    };
    const wasm = await run('wasm-1-thread', { DPT_NATIVE: 'off' }, '1');
    const native = await run('native-2-threads', { DPT_NATIVE: 'require' }, '2');
    expect(wasm.losses).toHaveLength(3 * 2);
    expect(native).toEqual(wasm);
  }, 600_000);

  it('refuses to resume a checkpoint of the 2-lane kernel it replaced, in one line naming both ids', async () => {
    const checkpoint = join(directory.path, 'old.ckpt');
    const first = await runCli(['train', ...FLAGS, '--workers', '1', '--checkpoint', checkpoint, '--out', join(directory.path, 'first.json')], {}, 180_000);
    expect(first.code, first.stderr).toBe(0);
    expect(existsSync(checkpoint)).toBe(true);
    // The same checkpoint as an earlier release wrote it: its run fingerprint names the old kernel id.
    const file = JSON.parse(readFileSync(checkpoint, 'utf8')) as { sha256: string; state: { fingerprint: { kernel: string } } };
    expect(file.state.fingerprint.kernel).toBe('lanes8-r4-f64acc-1');
    file.state.fingerprint.kernel = 'wasm-simd128-r4-f64acc-1';
    file.sha256 = createHash('sha256').update(JSON.stringify(file.state)).digest('hex');
    writeFileSync(checkpoint, JSON.stringify(file));
    const resumed = await runCli(['train', ...FLAGS, '--workers', '1', '--resume', checkpoint, '--out', join(directory.path, 'resumed.json')], {}, 180_000);
    expect(resumed.code).toBe(2);
    expect(resumed.stderr).toMatch(/kernel \(checkpoint: wasm-simd128-r4-f64acc-1, now: lanes8-r4-f64acc-1\) differs \(that kernel sums in another order/);
    expect(resumed.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(existsSync(join(directory.path, 'resumed.json'))).toBe(false);
  }, 600_000);
});
