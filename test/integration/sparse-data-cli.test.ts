import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, REPO, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterEach(() => killAll());
afterAll(() => directory.remove());

const FLIGHTS = join(REPO, 'test/fixtures/flights/flights_cat_2000.csv');
const FLIGHT_FLAGS = ['--hash-bits', '22', '--categorical', 'dow,month,origin,destination', '--categorical', 'dep_hour', '--cross', 'origin:destination'];

describe('dpt data with sparse data', () => {
  it('converts a LIBSVM file and shows rows, D, non-zeros per row, density and classes', async () => {
    const svm = join(directory.path, 'small.svm');
    writeFileSync(svm, '# two features, three rows\n+1 1:0.5 4:2\r\n-1 2:1 # comment\n-1 1:1 2:1 3:1 4:-1\n');
    const out = join(directory.path, 'small.dpt');
    const converted = await runCli(['data', 'convert', svm, out, '--quiet']);
    expect(converted.code).toBe(0);
    expect(converted.stdout).toMatch(/converted .*small\.svm to .*small\.dpt \(sparse\): 3 rows, D = 4, 7 non-zeros \(2\.33 a row\)/);
    const info = await runCli(['data', 'info', out]);
    expect(info.code).toBe(0);
    expect(info.stdout).toContain('sparse .dpt, 3 rows, D = 4 features, 7 non-zeros');
    expect(info.stdout).toContain('non-zeros per row: mean 2.33, max 4; density 0.583');
    expect(info.stdout).toContain('classes: 2 (-1, 1)');
    expect(info.stdout).toContain('LIBSVM indices');
    const json = JSON.parse((await runCli(['data', 'info', out, '--json'])).stdout);
    expect(json).toMatchObject({ kind: 'sparse', rows: 3, dims: 4, nnz: 7, nnzPerRowMax: 4, density: 7 / 12, classes: [-1, 1], hashing: null, verified: true });
  });

  it('exits 2 naming file, line and column of a bad LIBSVM line, and writes nothing', async () => {
    const svm = join(directory.path, 'bad.libsvm');
    writeFileSync(svm, '1 1:1 2:1\n0 1:1 1:3\n');
    const out = join(directory.path, 'bad.dpt');
    const failed = await runCli(['data', 'convert', svm, out]);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toContain(`${svm}, line 2, column 7: index 1 appears twice (indices must be strictly increasing) (DPT_DATASET)`);
    expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack trace
    expect(existsSync(out)).toBe(false);
    const qid = join(directory.path, 'rank.txt');
    writeFileSync(qid, '1 qid:4 1:1\n');
    const ranked = await runCli(['data', 'convert', qid, join(directory.path, 'rank.dpt'), '--format', 'libsvm']);
    expect(ranked.code).toBe(2);
    expect(ranked.stderr).toContain(`${qid}, line 1, column 3: 'qid:4': qid (ranking files) is not supported`);
  });

  it('hashes the flights fixture with a cross and shows the hashing spec', async () => {
    const out = join(directory.path, 'flights.dpt');
    const converted = await runCli(['data', 'convert', FLIGHTS, out, ...FLIGHT_FLAGS, '--quiet']);
    expect(converted.code).toBe(0);
    expect(converted.stdout).toMatch(/2,000 rows, D = 4,194,304, 14,000 non-zeros \(7\.00 a row\)/);
    const info = await runCli(['data', 'info', out]);
    expect(info.stdout).toContain(
      "hashed: murmur3_x86_32 seed 0 mod 2^22; categorical: dep_hour, dow, month, origin, destination; numeric: distance_mi; crosses: origin:destination; label 'label'",
    );
    expect(info.stdout).toMatch(/density 1\.67e-6/);
    const json = JSON.parse((await runCli(['data', 'info', out, '--json'])).stdout);
    expect(json.hashing).toEqual({
      function: 'murmur3_x86_32',
      seed: 0,
      bits: 22,
      columns: ['dep_hour', 'dow', 'month', 'distance_mi', 'origin', 'destination'],
      categorical: ['dep_hour', 'dow', 'month', 'origin', 'destination'],
      numeric: ['distance_mi'],
      crosses: [['origin', 'destination']],
      labelColumn: 'label',
    });
  });

  it('exits 2 naming the flag or the cell for hashing flags that do not fit', async () => {
    const out = join(directory.path, 'never.dpt');
    const cases: [string[], string][] = [
      [['--categorical', 'dow'], '--categorical and --cross need --hash-bits'],
      [['--hash-bits', '0'], "option '--hash-bits <B>' argument '0' is invalid"],
      [
        ['--hash-bits', '10', '--categorical', 'origin,destination', '--cross', 'origin:distance_mi'],
        "--cross origin:distance_mi: column 'distance_mi' is not categorical",
      ],
      [['--hash-bits', '10', '--categorical', 'airline'], `${FLIGHTS}, line 1: --categorical names column 'airline', which the header does not have`],
      [['--hash-bits', '10', '--cross', 'origin'], "option '--cross <a:b>' argument 'origin' is invalid"],
      [['--hash-bits', '10'], `${FLIGHTS}, line 2, column 2: column 'dow' 'mon' is not a finite number`],
    ];
    for (const [flags, message] of cases) {
      const result = await runCli(['data', 'convert', FLIGHTS, out, ...flags]);
      expect({ flags, code: result.code, message: result.stderr.includes(message) }).toEqual({ flags, code: 2, message: true });
    }
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a FIFO as LIBSVM input or as a .dpt to show, without waiting on it', async () => {
    // Nothing writes to the FIFOs: opening one for reading to look at its magic bytes blocked `data info` for good.
    const fifoSvm = join(directory.path, 'fifo.svm');
    const fifoDpt = join(directory.path, 'fifo.dpt');
    execFileSync('mkfifo', [fifoSvm, fifoDpt]);
    const converted = await runCli(['data', 'convert', fifoSvm, join(directory.path, 'fifo-out.dpt')], {}, 20_000);
    expect(converted.code).toBe(2);
    expect(converted.stderr).toContain(`${fifoSvm}: <in> must name a regular file; this is a FIFO`);
    const info = await runCli(['data', 'info', fifoDpt], {}, 20_000);
    expect(info.code).toBe(2);
    expect(info.stderr).toContain(`${fifoDpt}: <file> must name a regular file; this is a FIFO`);
  });

  it('exits 2 when a sparse .dpt is corrupt, naming the block', async () => {
    const svm = join(directory.path, 'ok.svm');
    writeFileSync(svm, '1 1:1 2:3\n0 2:1\n');
    const out = join(directory.path, 'ok.dpt');
    expect((await runCli(['data', 'convert', svm, out, '--quiet'])).code).toBe(0);
    const bytes = readFileSync(out);
    bytes[bytes.length - 10] = bytes[bytes.length - 10]! ^ 0xff; // inside the labels' padding: only the CRC can tell
    const corrupt = join(directory.path, 'corrupt.dpt');
    writeFileSync(corrupt, bytes);
    const info = await runCli(['data', 'info', corrupt]);
    expect(info.code).toBe(2);
    expect(info.stderr).toContain(`${corrupt}: content block 0 (bytes 192 on) fails its CRC-32 check: the file is corrupt (DPT_DATASET)`);
  });
});
