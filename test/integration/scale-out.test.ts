// Scale-out with the reduction tree (issue #11 items 1-2): with default flags, 16 worker
// processes all share every step of B = 4096 (64 chunks by default, a function of B alone) and
// train the bits of one worker; and a worker's upstream traffic is O(D) per step (one part per
// aligned subtree it holds), counted by the coordinator in a real run.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { modelHash } from '../helpers/model-hash.js';
import { writeSeededDpt } from '../helpers/seeded-dpt.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

/** A seeded .dpt file of `rows` × `D` with a learnable label (test/helpers/seeded-dpt.ts). */
function writeData(name: string, rows: number, D: number, seed: number): string {
  return writeSeededDpt(directory.path, name, rows, D, seed, (j) => Math.sin(j + 1));
}

function stepWorkers(metrics: string): number[] {
  return readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; workers?: number })
    .filter((event) => event.type === 'step')
    .map((event) => event.workers as number);
}

describe('scale-out along the reduction tree', () => {
  it('16 workers train the bits of one worker with default flags (B = 4096), and each holds a share of every step', { timeout: 300_000 }, async () => {
    const data = writeData('wide', 16_384, 20, 11);
    const flags = ['--data', data, '--epochs', '2', '--batch-size', '4096'];
    const oneOut = join(directory.path, 'one.json');
    const one = await runCli(['train', ...flags, '--workers', '1', '--out', oneOut], {}, 120_000);
    expect(one.code, one.stderr).toBe(0);

    // dpt train allows 4 local workers per CPU: the 16 are started by hand.
    const sixteen = async (name: string, extra: string[]): Promise<{ hash: string; perStep: number[]; stderr: string }> => {
      const out = join(directory.path, `${name}.json`);
      const metrics = join(directory.path, `${name}.jsonl`);
      const token = 'scale-out';
      const coordinator = startCli([
        'coordinator',
        ...flags,
        ...extra,
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--workers',
        '16',
        '--token',
        token,
        '--out',
        out,
        '--metrics',
        metrics,
      ]);
      const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
      const workers = Array.from({ length: 16 }, () => startCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--token', token]));
      const { code } = await coordinator.exited(240_000);
      expect(code, coordinator.stderr()).toBe(0);
      for (const worker of workers) expect((await worker.exited(60_000)).code).toBe(0);
      return { hash: modelHash(out), perStep: stepWorkers(metrics), stderr: coordinator.stderr() };
    };
    // Default flags, backups on: the bits of one worker, whoever computed which share.
    const withDefaults = await sixteen('sixteen', []);
    expect(withDefaults.perStep).toHaveLength(2 * 4);
    expect(withDefaults.hash).toBe(modelHash(oneOut));
    // Every worker holds a share of every step. Checked with backups off: a backup copy of a
    // straggler's share may legitimately commit a step before the straggler answers (on 2 CPUs
    // running 16 workers that happens in the warm-up steps), which is timing, not assignment.
    const noBackups = await sixteen('sixteen-no-backups', ['--backup-factor', '0']);
    expect(noBackups.perStep, noBackups.stderr.slice(-3000)).toEqual(Array(8).fill(16));
    expect(noBackups.hash).toBe(modelHash(oneOut));
  });

  it('the busiest worker sends at most 3·(D + 2)·8 bytes + 1 KiB per step at D = 200, B = 8192, W = 2, and receives one step message of about 8·D bytes', {
    timeout: 300_000,
  }, async () => {
    const D = 200;
    const data = writeData('deep', 16_384, D, 5);
    const result = await runCli(['train', '--data', data, '--epochs', '2', '--batch-size', '8192', '--workers', '2', '--backup-factor', '0'], {}, 240_000);
    expect(result.code, result.stderr).toBe(0);
    const counts = [
      ...result.stderr.matchAll(
        /worker (\d+) sent (\d+) step part\(s\), (\d+) bytes \((\d+) bytes per step\); received (\d+) bytes of step messages \((\d+) bytes per step\)/g,
      ),
    ];
    expect(counts, result.stderr).toHaveLength(2);
    const steps = 2 * 2;
    for (const [, , parts, bytes, , stepBytes] of counts) {
      expect(Number(parts)).toBe(steps); // one part a step: both workers had a share of every step
      expect(Number(bytes) / steps).toBeLessThanOrEqual(3 * (D + 2) * 8 + 1024);
      expect(Number(bytes) / steps).toBeGreaterThanOrEqual((D + 2) * 8); // the counter counts the payload
      // Downstream: one step message a step, w (D float64) plus b and the small assignment table.
      expect(Number(stepBytes) / steps).toBeGreaterThanOrEqual(D * 8);
      expect(Number(stepBytes) / steps).toBeLessThanOrEqual(D * 8 + 1024);
    }
  });
});
