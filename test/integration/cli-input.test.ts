// Bad files and bad flags through the real CLI: exit code 2 and one line that names the problem.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, runCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

function file(name: string, text: string): string {
  const path = join(directory.path, name);
  writeFileSync(path, text);
  return path;
}

describe('dpt train with a bad data file', () => {
  it.each([
    ['empty', '', /empty/],
    ['header-only', 'a,b,label\n', /line 2: the file has a header but no data rows/],
    ['non-numeric', 'a,b,label\n1,2,0\n3,x7,1\n', /line 3, column 2: column 'b' 'x7' is not a finite number/],
    ['empty-cell', 'a,b,label\n1,2,0\n,4,1\n', /line 3, column 1: column 'a' is empty/],
    ['wrong-columns', 'a,b,label\n1,2,0\n1,2,3,4\n', /line 3, column 4: expected 3 columns/],
    // Any label is a class (issue #12), but not more distinct ones than --max-classes (1,000): a row-id column as the label.
    [
      'too-many-classes',
      `a,b,label\n${Array.from({ length: 1001 }, (_, i) => `1,2,${i}`).join('\n')}\n`,
      /line 1002, column 3: label '1000' in column 'label': the label column holds at least 1,001 distinct classes, more than --max-classes 1000 allows/,
    ],
    ['empty-label', 'a,b,label\n1,2,0\n1,2,\n', /line 3, column 3: the label in column 'label' is an empty cell/],
    ['nan', 'a,b,label\n1,NaN,0\n', /line 2, column 2: column 'b' 'NaN' is not a finite number/],
    ['infinity', 'a,b,label\n1,2,0\n4,Infinity,1\n', /line 3, column 2: column 'b' 'Infinity' is not a finite number/],
  ])('rejects the %s case with exit code 2, naming file, line and column', async (name, text, message) => {
    const path = file(`${name}.csv`, text);
    const result = await runCli(['train', '--data', path, '--workers', '1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(path);
    expect(result.stderr).toMatch(message);
    // One clear line, no stack trace (besides the cache's "converted …" line when a CSV converts whole first).
    expect(
      result.stderr
        .trim()
        .split('\n')
        .filter((line) => !line.startsWith('converted ')),
    ).toHaveLength(1);
  });

  it('rejects a missing file with exit code 2', async () => {
    const result = await runCli(['train', '--data', join(directory.path, 'nope.csv')]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/nope\.csv: cannot read the file \(ENOENT\)/);
  });
});

describe('dpt with bad flags', () => {
  const good = file('good.csv', 'a,label\n1,0\n2,1\n');
  it.each([
    [['train', '--data', good, '--epochs', '0'], /--epochs.*expected a positive integer/],
    [['train', '--data', good, '--batch-size', 'ten'], /--batch-size.*expected a positive integer/],
    [['train', '--data', good, '--lr', '-1'], /--lr.*expected a positive number/],
    [['train', '--data', good, '--val-split', '1'], /--val-split.*expected a fraction/],
    [['train', '--data', good, '--port', '70000'], /--port.*expected a port/],
    [['train'], /required option '--data <path>' not specified/],
    [['train', '--data', good, '--bogus'], /unknown option '--bogus'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['worker'], /required option '--connect <url>' not specified/],
  ])('dpt %j exits 2', async (args, message) => {
    const result = await runCli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it('rejects a validation split that leaves no row with exit code 2', async () => {
    const result = await runCli(['train', '--data', good, '--val-split', '0.2']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/holds out no row/);
  });
});

describe('usage errors: one line naming the flag, exit code 2, before any work starts', () => {
  // A port this test holds for the whole describe: a server of dpt's must find it taken.
  let taken: Server;
  let takenPort = 0;
  const pem = { cert: '', key: '', otherKey: '', garbage: '' };
  beforeAll(async () => {
    taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const address = taken.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    takenPort = address.port;
    pem.cert = join(directory.path, 'cert.pem');
    pem.key = join(directory.path, 'key.pem');
    pem.otherKey = join(directory.path, 'other-key.pem');
    pem.garbage = file('garbage.pem', 'not a PEM file\n');
    const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', pem.key, '-out', pem.cert, '-days', '1', '-subj', '/CN=localhost']);
    openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', pem.otherKey]);
  });
  afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

  const data = 'data/breast_cancer.csv';
  type Case = [name: string, args: () => string[], named: () => RegExp, env?: Record<string, string>];
  const cases: Case[] = [
    [
      'a port in use (train)',
      () => ['train', '--data', data, '--port', String(takenPort)],
      () => new RegExp(`--port ${takenPort}: .*already in use \\(EADDRINUSE\\)`),
    ],
    [
      'a port in use (coordinator)',
      () => ['coordinator', '--data', data, '--host', '127.0.0.1', '--port', String(takenPort)],
      () => new RegExp(`--port ${takenPort}: .*EADDRINUSE`),
    ],
    // TEST-NET-3 (RFC 5737) is never an address of this machine: the bind fails, nothing is sent.
    [
      'an address not of this machine',
      () => ['train', '--data', data, '--host', '203.0.113.1'],
      () => /--host 203\.0\.113\.1: .*not an address of this machine \(EADDRNOTAVAIL\)/,
    ],
    [
      'a host name that does not resolve',
      () => ['train', '--data', data, '--host', 'no-such-host.invalid'],
      () => /--host no-such-host\.invalid: .*does not resolve/,
    ],
    [
      'a certificate that is not PEM',
      () => ['train', '--data', data, '--tls-cert', pem.garbage, '--tls-key', pem.key],
      () => /--tls-cert .*garbage\.pem: not a PEM certificate/,
    ],
    [
      'a key that is not PEM',
      () => ['train', '--data', data, '--tls-cert', pem.cert, '--tls-key', pem.garbage],
      () => /--tls-key .*garbage\.pem: not the PEM private key/,
    ],
    [
      'a key of another certificate',
      () => ['coordinator', '--data', data, '--tls-cert', pem.cert, '--tls-key', pem.otherKey],
      () => /--tls-key .*other-key\.pem: not the PEM private key of --tls-cert/,
    ],
    ['a certificate without its key', () => ['train', '--data', data, '--tls-cert', pem.cert], () => /--tls-cert and --tls-key go together/],
    ['a --connect that is not a URL', () => ['worker', '--connect', 'not-a-url'], () => /--connect <url>' argument 'not-a-url' is invalid/],
    ['a --connect of another scheme', () => ['worker', '--connect', 'ftp://host/'], () => /--connect <url>' argument 'ftp:\/\/host\/' is invalid/],
    ['a --ca that is not PEM', () => ['worker', '--connect', 'ws://127.0.0.1:9', '--ca', pem.garbage], () => /--ca .*garbage\.pem: not a PEM certificate/],
    [
      'a batch size beyond the protocol',
      () => ['train', '--data', data, '--batch-size', '99999999999'],
      () => /--batch-size <rows>' argument '99999999999'.*at most 4,294,967,295/,
    ],
    ['the same from the environment', () => ['train', '--data', data], () => /DPT_BATCH_SIZE.*at most 4,294,967,295/, { DPT_BATCH_SIZE: '99999999999' }],
    ['more chunks than the protocol carries', () => ['train', '--data', data, '--chunks', '70000'], () => /--chunks <n>' argument '70000'.*at most 65,536/],
    ['a seed beyond uint32', () => ['train', '--data', data, '--seed', '4294967296'], () => /--seed <n>' argument '4294967296'.*at most 4,294,967,295/],
    [
      'a timeout a timer cannot hold',
      () => ['train', '--data', data, '--join-timeout', '99999999999'],
      () => /--join-timeout <ms>' argument '99999999999'.*at most 2,147,483,647/,
    ],
    ['a heartbeat a timer cannot hold', () => ['coordinator', '--data', data, '--heartbeat', '3000000000'], () => /--heartbeat <ms>' argument '3000000000'/],
    [
      'a worker connect timeout a timer cannot hold',
      () => ['worker', '--connect', 'ws://127.0.0.1:9', '--connect-timeout', '99999999999'],
      () => /--connect-timeout <ms>'/,
    ],
    [
      'a monitor connect timeout a timer cannot hold',
      () => ['monitor', 'http://127.0.0.1:9', '--connect-timeout', '99999999999'],
      () => /--connect-timeout <ms>'/,
    ],
    [
      'a backup factor below 1',
      () => ['train', '--data', data, '--backup-factor', '0.5'],
      () => /--backup-factor <f>' argument '0\.5'.*0 \(off\) or a number of at least 1/,
    ],
    ['a hundred thousand compute threads', () => ['train', '--data', data, '--threads', '100000'], () => /--threads <n>' argument '100000'.*at most 1,024/],
    ['an epoch count beyond a billion', () => ['train', '--data', data, '--epochs', '99999999999'], () => /--epochs <n>' argument '99999999999'/],
    [
      'generate with 99,999,999 features',
      () => ['data', 'generate', '--rows', '10', '--features', '99999999', '--out', 'OUT'],
      () => /--features <d>' argument '99999999'.*at most 1,000,000/,
    ],
    [
      'generate with 2^32 rows',
      () => ['data', 'generate', '--rows', '4294967296', '--features', '2', '--out', 'OUT'],
      () => /--rows <n>' argument '4294967296'/,
    ],
    // Commander's own errors, in the same one-line form.
    ['an unknown option', () => ['train', '--data', data, '--bogus'], () => /unknown option '--bogus'/],
    ['a misspelt option', () => ['train', '--data', data, '--dta', data], () => /unknown option '--dta' \(Did you mean --data\?\)/],
    ['a missing required option', () => ['train'], () => /required option '--data <path>' not specified/],
    ['a missing option argument', () => ['train', '--data'], () => /option '--data <path>' argument missing/],
    ['a missing command argument', () => ['monitor'], () => /missing required argument 'url'/],
    ['an invalid choice', () => ['train', '--data', data, '--kernel', 'avx'], () => /--kernel <kind>' argument 'avx' is invalid\. expected wasm-simd or js/],
    ['an unknown command', () => ['frobnicate'], () => /unknown command 'frobnicate'/],
    ['a missing subcommand', () => ['data'], () => /missing command after 'dpt data'/],
    ['no command at all', () => [], () => /missing command after 'dpt'/],
    ['a monitor address that is not a URL', () => ['monitor', 'not-a-url'], () => /monitor URL 'not-a-url' is not a valid URL/],
  ];

  it.each(cases)('refuses %s', async (name, args, named, env = {}) => {
    // Every output lands in a fresh directory: nothing may be created there.
    const outputs = join(directory.path, `usage-${name.replace(/\W+/g, '-')}`);
    mkdirSync(outputs);
    const argv = args().map((arg) => (arg === 'OUT' ? join(outputs, 'generated.dpt') : arg));
    const writes = argv[0] === 'train' || argv[0] === 'coordinator' ? ['--out', join(outputs, 'model.json'), '--metrics', join(outputs, 'metrics.jsonl')] : [];
    const result = await runCli(argv.length === 0 ? [] : [argv[0] as string, ...writes, ...argv.slice(1)], env, 30_000);
    expect(result.code, result.stderr).toBe(2);
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^dpt: .+ \(DPT_CONFIG\)$/);
    expect(lines[0]).toMatch(named());
    expect(result.stderr).not.toMatch(/^\s+at /m); // no stack frame
    // Refused before any work: no server announced, no local worker started, nothing written.
    expect(result.stdout).toBe('');
    expect(readdirSync(outputs)).toEqual([]);
  });

  it('checks the listen address and the TLS pair before it reads the data', async () => {
    // The data file does not exist: an error about it would mean the data was opened first.
    const missing = join(directory.path, 'never-read.csv');
    const port = await runCli(['train', '--data', missing, '--port', String(takenPort)]);
    expect([port.code, port.stderr]).toEqual([2, expect.stringMatching(new RegExp(`^dpt: --port ${takenPort}: .*EADDRINUSE.*\\(DPT_CONFIG\\)\n$`))]);
    const tls = await runCli(['coordinator', '--data', missing, '--port', '0', '--tls-cert', pem.garbage, '--tls-key', pem.key]);
    expect([tls.code, tls.stderr]).toEqual([2, expect.stringMatching(/^dpt: --tls-cert .*not a PEM certificate.*\(DPT_CONFIG\)\n$/)]);
    expect(existsSync(missing)).toBe(false);
  });
});

describe('dpt predict and evaluate', () => {
  it('predicts every row and evaluates metrics that agree with the predictions', async () => {
    const out = join(directory.path, 'model.json');
    const train = await runCli(['train', '--data', 'data/breast_cancer.csv', '--workers', '2', '--epochs', '5', '--out', out]);
    expect(train.code, train.stderr).toBe(0);
    const predictions = join(directory.path, 'predictions.csv');
    const predict = await runCli(['predict', '--model', out, '--data', 'data/breast_cancer.csv', '--out', predictions]);
    expect(predict.code, predict.stderr).toBe(0);
    const lines = readFileSync(predictions, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('probability,prediction');
    expect(lines).toHaveLength(570);
    const rows = lines.slice(1).map((line) => line.split(',').map(Number));
    const labels = readFileSync('data/breast_cancer.csv', 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => Number(line.split(',').at(-1)));
    for (const [p, c] of rows) {
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(1);
      expect(c).toBe((p as number) > 0.5 ? 1 : 0);
    }
    // Independent metrics from the predictions file.
    const accuracy = rows.filter(([, c], i) => c === labels[i]).length / rows.length;
    const logLoss = -rows.reduce((s, [p], i) => s + (labels[i] === 1 ? Math.log(p as number) : Math.log(1 - (p as number))), 0) / rows.length;
    const evaluate = await runCli(['evaluate', '--model', out, '--data', 'data/breast_cancer.csv', '--json']);
    expect(evaluate.code, evaluate.stderr).toBe(0);
    const metrics = JSON.parse(evaluate.stdout) as Record<string, number>;
    expect(metrics.rows).toBe(569);
    expect(metrics.accuracy).toBeCloseTo(accuracy, 12);
    expect(metrics.logLoss).toBeCloseTo(logLoss, 6);
    expect(metrics.accuracy).toBeGreaterThan(0.95);
    expect(metrics.rocAuc).toBeGreaterThan(0.98);
    const human = await runCli(['evaluate', '--model', out, '--data', 'data/breast_cancer.csv']);
    expect(human.stdout).toMatch(/ROC AUC\s+0\.99/);
  });

  it('evaluates a .dpt file to the same metrics as its CSV', async () => {
    const out = join(directory.path, 'model-dpt.json');
    const binary = join(directory.path, 'breast.dpt');
    expect((await runCli(['data', 'convert', 'data/breast_cancer.csv', binary])).code).toBe(0);
    expect((await runCli(['train', '--data', binary, '--workers', '1', '--epochs', '3', '--out', out])).code).toBe(0);
    const fromCsv = await runCli(['evaluate', '--model', out, '--data', 'data/breast_cancer.csv', '--json']);
    const fromBinary = await runCli(['evaluate', '--model', out, '--data', binary, '--json']);
    expect(fromBinary.code, fromBinary.stderr).toBe(0);
    expect(JSON.parse(fromBinary.stdout)).toEqual(JSON.parse(fromCsv.stdout));
  });

  it('refuses a malformed model file and a data file without the model features, exit code 2', async () => {
    const bad = file(
      'bad-model.json',
      '{"format":"dpt-model","version":1,"kind":"logistic-regression","weights":[1],"bias":"x","features":["a"],"standardization":null}',
    );
    const result = await runCli(['predict', '--model', bad, '--data', 'data/breast_cancer.csv']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/field 'bias' must be a finite number/);
    const model = file(
      'model-a.json',
      '{"format":"dpt-model","version":1,"kind":"logistic-regression","weights":[1],"bias":0,"features":["zzz"],"standardization":null}',
    );
    const missing = await runCli(['predict', '--model', model, '--data', 'data/breast_cancer.csv']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/feature column 'zzz' is missing/);
  });
});
