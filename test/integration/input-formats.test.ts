// predict and evaluate read every format train reads (issue #14 item 5): the same rows as a plain
// CSV, as gzip (.csv.gz, or gzip under another name) and as a .dpt file give the same output, to
// the byte; a damaged gzip file is one line naming it, exit 2.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
const csv = join(REPO, 'data', 'breast_cancer.csv');
const model = join(directory.path, 'model.json');
const inputs = {
  csv,
  gzip: join(directory.path, 'breast_cancer.csv.gz'),
  gzipUnderAnotherName: join(directory.path, 'breast_cancer.data'),
  dpt: join(directory.path, 'breast_cancer.dpt'),
};
const env = { DPT_CACHE_DIR: join(directory.path, 'cache') };

beforeAll(async () => {
  const packed = gzipSync(readFileSync(csv));
  writeFileSync(inputs.gzip, packed);
  writeFileSync(inputs.gzipUnderAnotherName, packed);
  const converted = await runCli(['data', 'convert', csv, inputs.dpt, '--quiet'], env, 120_000);
  expect(converted.code).toBe(0);
  const trained = await runCli(['train', '--data', csv, '--workers', '1', '--epochs', '2', '--no-pin', '--out', model], env, 120_000);
  expect(trained.code).toBe(0);
}, 300_000);

afterAll(() => {
  killAll();
  directory.remove();
});

describe('dpt predict and dpt evaluate', () => {
  it('print the same predictions for a CSV, its gzip (by content, whatever the name) and its .dpt', async () => {
    const outputs: Record<string, string> = {};
    for (const [format, path] of Object.entries(inputs)) {
      const result = await runCli(['predict', '--model', model, '--data', path], env, 120_000);
      expect(result.stderr, format).toBe('');
      expect(result.code, format).toBe(0);
      outputs[format] = result.stdout;
    }
    const lines = outputs.csv!.trim().split('\n');
    expect(lines[0]).toBe('probability,prediction');
    expect(lines).toHaveLength(570); // the header and 569 rows
    for (const format of Object.keys(inputs)) expect(outputs[format], format).toBe(outputs.csv);
  }, 300_000);

  it('report the same metrics for the three formats', async () => {
    const reports: Record<string, unknown> = {};
    for (const [format, path] of Object.entries(inputs)) {
      const result = await runCli(['evaluate', '--model', model, '--data', path, '--json'], env, 120_000);
      expect(result.code, `${format}: ${result.stderr}`).toBe(0);
      reports[format] = JSON.parse(result.stdout);
    }
    expect(reports.csv).toMatchObject({ rows: 569 });
    for (const format of Object.keys(inputs)) expect(reports[format], format).toEqual(reports.csv);
  }, 300_000);

  it('refuse a damaged gzip file with one line naming it, exit 2', async () => {
    const packed = readFileSync(inputs.gzip);
    const damaged = join(directory.path, 'damaged.csv.gz');
    writeFileSync(damaged, packed.subarray(0, Math.floor(packed.length / 2)));
    for (const command of ['predict', 'evaluate']) {
      const result = await runCli([command, '--model', model, '--data', damaged], env, 120_000);
      expect(result.code, command).toBe(2);
      expect(result.stdout, command).toBe('');
      expect(result.stderr, command).toMatch(/^dpt: \S*damaged\.csv\.gz: not a valid gzip file \(.*\) \(DPT_DATASET\)\n$/);
    }
  }, 300_000);
});
