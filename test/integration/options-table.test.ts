// The training flags built from the options table, through the real CLI: the new model flags'
// bad values exit 2 with one line naming the flag (from a flag or a DPT_ variable), and the run
// fingerprint built from the table reaches the model file and refuses a resume with another
// result-changing option while it accepts one that changes only how the run is operated.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

/** 40 rows, 2 features, labels 0/1 by a seeded rule (not separable, so the loss stays finite and moves). */
function dataFile(): string {
  const lines = ['a,b,label'];
  let state = 12_345;
  const next = (): number => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state / 2_147_483_648;
  };
  for (let i = 0; i < 40; i++) {
    const a = next() * 4 - 2;
    const b = next() * 4 - 2;
    lines.push(`${a.toFixed(6)},${b.toFixed(6)},${a + 0.5 * b + next() - 0.5 > 0 ? 1 : 0}`);
  }
  const path = join(directory.path, 'data.csv');
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

const data = dataFile();

describe('the model flags through the CLI', () => {
  it.each([
    [['--model', 'svm'], {}, /option '--model <kind>' argument 'svm' is invalid\. expected one of auto, logistic, softmax; .*\(DPT_CONFIG\)/],
    [['--max-classes', '0'], {}, /option '--max-classes <n>' argument '0' is invalid\. expected a positive integer;/],
    [['--max-classes', '100000'], {}, /option '--max-classes <n>' argument '100000' is invalid\. expected a positive integer of at most 65,535;/],
    [['--class-weight', 'inverse'], {}, /option '--class-weight <mode>' argument 'inverse' is invalid\. expected one of none, balanced;/],
    [[], { DPT_CLASS_WEIGHT: 'some' }, /option '--class-weight <mode>' value 'some' from env 'DPT_CLASS_WEIGHT' is invalid\. expected one of none, balanced;/],
    [[], { DPT_MODEL: 'tree' }, /option '--model <kind>' value 'tree' from env 'DPT_MODEL' is invalid\. expected one of auto, logistic, softmax;/],
  ])('dpt train and dpt coordinator %j %j exit 2 with one line naming the flag', async (args, env, message) => {
    for (const command of ['train', 'coordinator']) {
      const result = await runCli([command, '--data', data, '--workers', '1', ...args], env);
      expect(result.code, command).toBe(2);
      expect(result.stderr, command).toMatch(message);
      expect(result.stderr.trim().split('\n'), command).toHaveLength(1);
    }
  });
});

describe('the run fingerprint built from the table', () => {
  it('is in the model file, and a resume is refused for another result-changing option but not for an operational one', async () => {
    const checkpoint = join(directory.path, 'run.ckpt');
    const model = join(directory.path, 'model.json');
    const base = ['train', '--data', data, '--workers', '1', '--epochs', '2', '--batch-size', '8'];
    const first = await runCli([...base, '--checkpoint', checkpoint, '--out', model], {}, 120_000);
    expect(first.code, first.stderr).toBe(0);
    const trainedOn = (JSON.parse(readFileSync(model, 'utf8')) as { trainedOn: Record<string, unknown> }).trainedOn;
    expect(trainedOn).toMatchObject({ epochs: 2, batchSize: 8, optimizer: 'sgd' });
    // The defaults of --model (logistic on 0/1 labels) and --class-weight are implied, so a logistic model file is as before.
    expect(trainedOn).not.toHaveProperty('model');
    expect(trainedOn).not.toHaveProperty('classWeight');
    expect(trainedOn).not.toHaveProperty('heartbeat');
    expect(trainedOn).not.toHaveProperty('maxClasses');

    const refused = await runCli([...base, '--resume', checkpoint, '--class-weight', 'balanced'], {}, 120_000);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/the checkpoint belongs to another run: classWeight \(checkpoint: none, now: balanced\) differs/);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);

    // --heartbeat and --max-classes do not change the result: the finished run resumes at its end and writes the same model.
    const again = join(directory.path, 'again.json');
    const resumed = await runCli([...base, '--resume', checkpoint, '--heartbeat', '1000', '--max-classes', '2', '--out', again], {}, 120_000);
    expect(resumed.code, resumed.stderr).toBe(0);
    const weights = (path: string): unknown => {
      const file = JSON.parse(readFileSync(path, 'utf8')) as { weights: number[]; bias: number };
      return [file.weights, file.bias];
    };
    expect(weights(again)).toEqual(weights(model));
  }, 300_000);
});
