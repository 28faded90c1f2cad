// The --no-standardize warning in a real run (issue #14 item 5): raw breast-cancer features at the
// default rate print one warning line, and the loss does jump as it says; a rate below the bound it
// names, standardized features and an adaptive optimizer print none.

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
const env = { DPT_CACHE_DIR: join(directory.path, 'cache') };
const data = join(REPO, 'data', 'breast_cancer.csv');

afterAll(() => {
  killAll();
  directory.remove();
});

async function train(extra: string[]): Promise<{ warnings: string[]; stableLr: number | null; loss: number }> {
  const result = await runCli(['train', '--data', data, '--workers', '1', '--no-pin', '--epochs', '1', '--val-split', '0', ...extra], env, 120_000);
  expect(result.code, result.stderr).toBe(0);
  const warnings = result.stderr.split('\n').filter((line) => line.includes('--no-standardize'));
  const stable = /stable only below --lr (\S+)/.exec(warnings[0] ?? '');
  const loss = /^epoch 1\/1 .*?loss (\S+)/m.exec(result.stdout)?.[1];
  expect(loss, result.stdout).toBeDefined();
  return { warnings, stableLr: stable === null ? null : Number(stable[1]), loss: Number(loss!.replace(/,/g, '')) };
}

describe('dpt train --no-standardize', () => {
  it('warns in one line at the default rate, and the loss then jumps far above ln 2', async () => {
    const run = await train(['--no-standardize']);
    expect(run.warnings).toHaveLength(1);
    expect(run.warnings[0]).toMatch(/^dpt: warning: --no-standardize: .*--optimizer sgd stable only below --lr \S+ .*not at 0\.1: /);
    expect(run.stableLr).toBeGreaterThan(0);
    expect(run.loss).toBeGreaterThan(10 * Math.LN2);
  }, 180_000);

  it('is silent below the rate it names, and the loss falls below ln 2 there', async () => {
    const warned = await train(['--no-standardize']);
    const run = await train(['--no-standardize', '--lr', String(warned.stableLr! * 0.75)]);
    expect(run.warnings).toEqual([]);
    expect(run.loss).toBeLessThan(Math.LN2);
  }, 180_000);

  it('is silent with standardized features and with adam', async () => {
    expect((await train([])).warnings).toEqual([]);
    expect((await train(['--no-standardize', '--optimizer', 'adam', '--lr', '0.01'])).warnings).toEqual([]);
  }, 180_000);
});
