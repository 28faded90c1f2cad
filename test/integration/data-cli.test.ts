import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterEach(() => killAll());
afterAll(() => directory.remove());

describe('dpt data', () => {
  it('converts a CSV file, and exits 2 naming file, line and column for a bad cell', async () => {
    const good = join(directory.path, 'good.csv');
    writeFileSync(good, 'a,b,label\n1,2,0\n3,4,1\n');
    const converted = await runCli(['data', 'convert', good, join(directory.path, 'good.dpt')]);
    expect(converted.code).toBe(0);
    expect(converted.stdout).toMatch(/converted .*good\.csv to .*good\.dpt: 2 rows × 2 features/);
    const bad = join(directory.path, 'bad.csv');
    writeFileSync(bad, 'a,b,label\n1,2,0\n3,x7,1\n');
    const failed = await runCli(['data', 'convert', bad, join(directory.path, 'bad.dpt')]);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain(`${bad}, line 3, column 2: column 'b' 'x7' is not a finite number (DPT_DATASET)`);
    expect(existsSync(join(directory.path, 'bad.dpt'))).toBe(false);
  });

  it('generates a data set with its true weights, and shows and verifies it', async () => {
    const out = join(directory.path, 'synthetic.dpt');
    const generated = await runCli(['data', 'generate', '--rows', '300', '--features', '3', '--seed', '9', '--out', out]);
    expect(generated.code).toBe(0);
    expect(existsSync(`${out}.weights.json`)).toBe(true);
    const info = await runCli(['data', 'info', out, '--verify', '--json']);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toMatchObject({ rows: 300, features: 3, label: 'label', featureNames: ['f0', 'f1', 'f2'], verified: true });
  });

  it('exits 2 on a bad flag or a file that is not .dpt', async () => {
    expect((await runCli(['data', 'generate', '--rows', '0', '--features', '3', '--out', join(directory.path, 'x.dpt')])).code).toBe(2);
    expect((await runCli(['data', 'generate', '--rows', '5', '--features', '3', '--format', 'parquet', '--out', join(directory.path, 'x.dpt')])).code).toBe(2);
    const text = join(directory.path, 'text.dpt');
    writeFileSync(text, 'a,b,label\n'.repeat(10));
    const info = await runCli(['data', 'info', text]);
    expect(info.code).toBe(2);
    expect(info.stderr).toMatch(/header field 'magic': not a \.dpt file/);
  });
});
