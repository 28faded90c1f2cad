import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';
import { craftLabelIndex } from '../helpers/dpt-bytes.js';

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

  it('converts a CSV of class names and shows its classes and label type; --max-classes bounds them (exit 2 naming line and column)', async () => {
    const csv = join(directory.path, 'species.csv');
    const species = ['setosa', 'versicolor', 'virginica', 'Émile', 'ß'];
    writeFileSync(csv, `a,b,species\n${Array.from({ length: 50 }, (_, i) => `${i},${i / 2},${species[i % 5]}`).join('\n')}\n`);
    const out = join(directory.path, 'species.dpt');
    const converted = await runCli(['data', 'convert', csv, out, '--quiet']);
    expect(converted.code).toBe(0);
    expect(converted.stdout).toMatch(/50 rows × 2 features, .* classes 5 \("setosa", "versicolor", "virginica", "Émile", "ß"\)/);
    const info = await runCli(['data', 'info', out, '--verify']);
    expect(info.code).toBe(0);
    expect(info.stdout).toContain('classes: 5 ("setosa", "versicolor", "virginica", "Émile", "ß"); labels stored as uint16 (version 2: the class index)');
    expect(info.stdout).toContain('every label a class index below 5');
    const json = JSON.parse((await runCli(['data', 'info', out, '--json'])).stdout);
    expect(json).toMatchObject({ rows: 50, label: 'species', version: 2, labelType: 'uint16', classes: ['setosa', 'versicolor', 'virginica', 'Émile', 'ß'] });
    // Many numeric classes: sorted by value, the list cut after 20.
    const many = join(directory.path, 'many.csv');
    writeFileSync(many, `a,label\n${Array.from({ length: 30 }, (_, i) => `${i},${(29 - i) * 10}`).join('\n')}\n`);
    const manyOut = join(directory.path, 'many.dpt');
    expect((await runCli(['data', 'convert', many, manyOut, '--quiet'])).code).toBe(0);
    expect((await runCli(['data', 'info', manyOut])).stdout).toContain(
      'classes: 30 (0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190, … 10 more)',
    );
    const bounded = await runCli(['data', 'convert', csv, join(directory.path, 'bounded.dpt'), '--max-classes', '3']);
    expect(bounded.code).toBe(2);
    expect(bounded.stderr).toContain(
      `${csv}, line 5, column 3: label 'Émile' in column 'species': the label column holds at least 4 distinct classes, more than --max-classes 3 allows`,
    );
    expect(existsSync(join(directory.path, 'bounded.dpt'))).toBe(false);
    // A class index ≥ K crafted with a valid CRC: --verify exits 2 naming the block and the row.
    const crafted = join(directory.path, 'crafted.dpt');
    const bytes = readFileSync(out);
    craftLabelIndex(bytes, 17, 5);
    writeFileSync(crafted, bytes);
    const verified = await runCli(['data', 'info', crafted, '--verify']);
    expect(verified.code).toBe(2);
    expect(verified.stderr).toContain(
      `${crafted}: the label of row 17 (counting from 0) is class index 5, not below the file's 5 classes (content block 0; corrupt file?)`,
    );
    const badFlag = await runCli(['data', 'convert', csv, join(directory.path, 'bounded.dpt'), '--max-classes', '70000']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toMatch(/--max-classes/);
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
