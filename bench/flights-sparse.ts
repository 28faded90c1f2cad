// `npm run bench:flights`: the real-data demo of issue #13. flights_3m_cat (3 M flights, string
// columns) split by a seeded 80/20 draw into train.csv / test.csv; the same features one-hot
// encoded for liblinear (train.svm / test.svm); L2-regularised logistic regression trained by
// Debian's liblinear-train (-s 0, C = 1/(λ·n)) and by dpt (hashed columns, an origin×destination
// cross, --l2 λ); both scored on the held-out rows by this file's own code (log-loss from the
// scores, AUC by rank). Writes OUT/results.json and prints a table for README.md.
//
// Features (both sides): dow, month, dep_hour, origin, destination as categories and the cross
// origin×destination. distance_mi is left out: it is a function of (origin, destination), which
// the cross already one-hot encodes (and its raw scale, 1e3 miles, would need standardizing).
// liblinear's one-hot indices are the features seen in the training rows (1-based, in order of
// first appearance); a held-out row's unseen category gets no entry, as its hashed bucket has a
// zero weight in dpt unless it collides (the collisions are counted and reported).
// liblinear -B 1 adds a bias feature of value 1 whose weight it penalises (λ/2·b² in dpt's
// objective scale); dpt does not penalise its bias. The size of that term is reported.
//
// dpt trains either on the hashed CSV (--dpt-input hashed, the default: --hash-bits B --categorical
// … --cross origin:destination) or on the very LIBSVM file liblinear reads (--dpt-input libsvm: the
// same features with no collision at all). L2 on sparse data trains with --optimizer sgd or ftrl
// (ftrl: --lr is α, --lr-schedule constant); --l1 λ1 adds dpt's L1 (sgd or ftrl).
//
// Flags: --data PATH (default ../shared/datasets/flights_3m_cat.csv.gz), --out DIR (default
// bench/results/flights), --lambda λ (1e-5), --l1 λ1 (0), --hash-bits B (22), --epochs E (5), --optimizer
// (sgd), --lr η (1), --lr-schedule (cosine), --batch-size (256), --workers W (2), --eps (liblinear -e, 0.001), --rows N
// (first N rows only, for a quick run), --seed (20261201), --dpt-input hashed|libsvm, --dpt-cli
// PATH (the dpt that trains; default this build's dist/cli/main.js), --no-liblinear, --no-dpt.

import { type SpawnSyncReturns, spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { rocAuc } from '../shared/evaluation.js';
import { murmur3_x86_32 } from '../shared/murmur3.js';
import { createRandom } from '../shared/rng.js';
import { lineWriter, REPO, writeJson } from './harness.js';
import { type LiblinearModel, readLiblinearModel, softplus } from './liblinear-model.js';

const CATEGORICAL = ['dep_hour', 'dow', 'month', 'origin', 'destination'] as const;
const CROSS = ['origin', 'destination'] as const;
const KEPT = [...CATEGORICAL, 'label'];
const CLI = join(REPO, 'dist', 'cli', 'main.js');

interface Args {
  data: string;
  out: string;
  lambda: number;
  /** --l1 of dpt (sgd's exact proximal L1 or ftrl's λ1); 0: not passed. */
  l1: number;
  hashBits: number;
  epochs: number;
  optimizer: string;
  lr: number;
  lrSchedule: string;
  batchSize: number;
  workers: number;
  eps: number;
  rows: number;
  seed: number;
  dptInput: 'hashed' | 'libsvm';
  dptCli: string;
  isLiblinear: boolean;
  isDpt: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    data: join(REPO, '..', 'shared', 'datasets', 'flights_3m_cat.csv.gz'),
    out: join(REPO, 'bench', 'results', 'flights'),
    lambda: 1e-5,
    l1: 0,
    hashBits: 22,
    epochs: 5,
    optimizer: 'sgd',
    lr: 1,
    lrSchedule: 'cosine',
    batchSize: 256,
    workers: 2,
    eps: 0.001,
    rows: Number.POSITIVE_INFINITY,
    seed: 20_261_201,
    dptInput: 'hashed',
    dptCli: CLI,
    isLiblinear: true,
    isDpt: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${flag} needs a value`);
      return next;
    };
    const number = (): number => {
      const text = value();
      const parsed = Number(text);
      if (!Number.isFinite(parsed)) throw new Error(`${flag} ${text} is not a number`);
      return parsed;
    };
    if (flag === '--data') args.data = value();
    else if (flag === '--out') args.out = value();
    else if (flag === '--lambda') args.lambda = number();
    else if (flag === '--l1') args.l1 = number();
    else if (flag === '--hash-bits') args.hashBits = number();
    else if (flag === '--epochs') args.epochs = number();
    else if (flag === '--optimizer') args.optimizer = value();
    else if (flag === '--lr') args.lr = number();
    else if (flag === '--lr-schedule') args.lrSchedule = value();
    else if (flag === '--batch-size') args.batchSize = number();
    else if (flag === '--workers') args.workers = number();
    else if (flag === '--eps') args.eps = number();
    else if (flag === '--rows') args.rows = number();
    else if (flag === '--seed') args.seed = number();
    else if (flag === '--dpt-input') {
      const input = value();
      if (input !== 'hashed' && input !== 'libsvm') throw new Error(`--dpt-input ${input}: hashed or libsvm`);
      args.dptInput = input;
    } else if (flag === '--dpt-cli') args.dptCli = value();
    else if (flag === '--no-liblinear') args.isLiblinear = false;
    else if (flag === '--no-dpt') args.isDpt = false;
    else throw new Error(`unknown flag ${flag}`);
  }
  return args;
}

export interface SplitSummary {
  readonly trainRows: number;
  readonly testRows: number;
  readonly trainPositives: number;
  readonly testPositives: number;
  /** One-hot features seen in the training rows (liblinear's n, without the bias). */
  readonly features: number;
  /** The features' names ("column=value", "origin=v^destination=u"), index j−1 for liblinear's j. */
  readonly featureNames: readonly string[];
  /** Held-out one-hot entries whose category the training rows never had (dropped for liblinear). */
  readonly unseenTestEntries: number;
}

/**
 * Streams the gzipped CSV once: each row goes to the held-out set with probability 0.2 (a seeded
 * draw per row, so the split does not depend on the row order the file happens to have), written
 * as CSV (the kept columns) and as LIBSVM (one-hot, indices sorted).
 */
async function splitAndEncode(args: Args): Promise<SplitSummary> {
  const input = createInterface({ input: createReadStream(args.data).pipe(createGunzip()), crlfDelay: Number.POSITIVE_INFINITY });
  const writers = {
    trainCsv: lineWriter(join(args.out, 'train.csv')),
    testCsv: lineWriter(join(args.out, 'test.csv')),
    trainSvm: lineWriter(join(args.out, 'train.svm')),
    testSvm: lineWriter(join(args.out, 'test.svm')),
  };
  const random = createRandom(args.seed, 0);
  const index = new Map<string, number>();
  const featureNames: string[] = [];
  let columns: number[] = [];
  let header = true;
  let trainRows = 0;
  let testRows = 0;
  let trainPositives = 0;
  let testPositives = 0;
  let unseenTestEntries = 0;
  let rowsRead = 0;
  const names: string[] = new Array(CATEGORICAL.length + 1);
  const indices: number[] = [];
  for await (const line of input) {
    if (line === '') continue;
    const cells = line.split(',');
    if (header) {
      columns = KEPT.map((name) => {
        const at = cells.indexOf(name);
        if (at === -1) throw new Error(`${args.data}: no column '${name}'`);
        return at;
      });
      header = false;
      writers.trainCsv.write(KEPT.join(','));
      writers.testCsv.write(KEPT.join(','));
      continue;
    }
    if (rowsRead++ >= args.rows) break;
    const kept = columns.map((at) => cells[at]!.trim());
    const label = kept[kept.length - 1]!;
    if (label !== '0' && label !== '1') throw new Error(`${args.data}: row ${rowsRead}: label ${label}`);
    const isTest = random() < 0.2;
    CATEGORICAL.forEach((name, c) => {
      names[c] = `${name}=${kept[c]}`;
    });
    names[CATEGORICAL.length] = `${CROSS[0]}=${kept[CATEGORICAL.indexOf(CROSS[0])]}^${CROSS[1]}=${kept[CATEGORICAL.indexOf(CROSS[1])]}`;
    indices.length = 0;
    for (const name of names) {
      let j = index.get(name);
      if (j === undefined && !isTest) {
        featureNames.push(name);
        j = featureNames.length;
        index.set(name, j);
      }
      if (j === undefined) unseenTestEntries++;
      else indices.push(j);
    }
    indices.sort((a, b) => a - b);
    const svm = `${label} ${indices.map((j) => `${j}:1`).join(' ')}`;
    if (isTest) {
      testRows++;
      if (label === '1') testPositives++;
      writers.testCsv.write(kept.join(','));
      writers.testSvm.write(svm);
    } else {
      trainRows++;
      if (label === '1') trainPositives++;
      writers.trainCsv.write(kept.join(','));
      writers.trainSvm.write(svm);
    }
  }
  await Promise.all(Object.values(writers).map((writer) => writer.close()));
  return { trainRows, testRows, trainPositives, testPositives, features: featureNames.length, featureNames, unseenTestEntries };
}

/** Held-out metrics from scores z = w·x + b (P(y = 1) = σ(z)). */
export interface HeldOut {
  readonly rows: number;
  /** mean softplus(z) − y·z, the log-loss without rounding p. */
  readonly logLoss: number;
  readonly accuracy: number;
  readonly auc: number | null;
}

export function heldOutMetrics(scores: Float64Array, y: Uint8Array): HeldOut {
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < scores.length; i++) {
    const z = scores[i]!;
    loss += softplus(z) - y[i]! * z;
    if ((z > 0 ? 1 : 0) === y[i]) correct++;
  }
  return { rows: scores.length, logLoss: loss / scores.length, accuracy: correct / scores.length, auc: rocAuc(scores, y) };
}

/** Scores and labels of a LIBSVM file under a liblinear model (features beyond n ignored, as liblinear-predict does). */
function scoreLibsvm(path: string, model: LiblinearModel): { scores: Float64Array; y: Uint8Array } {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '');
  const scores = new Float64Array(lines.length);
  const y = new Uint8Array(lines.length);
  lines.forEach((line, i) => {
    const parts = line.split(' ');
    y[i] = parts[0] === '1' ? 1 : 0;
    let z = model.biasWeight * model.biasValue;
    for (let k = 1; k < parts.length; k++) {
      const colon = parts[k]!.indexOf(':');
      const j = Number(parts[k]!.slice(0, colon));
      if (j <= model.w.length) z += model.w[j - 1]! * Number(parts[k]!.slice(colon + 1));
    }
    scores[i] = model.sign * z;
  });
  return { scores, y };
}

function run(command: string, args: readonly string[], what: string): { result: SpawnSyncReturns<string>; seconds: number } {
  const started = process.hrtime.bigint();
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`${what} failed (${result.status ?? result.signal}): ${result.stderr}${result.error?.message ?? ''}`);
  return { result, seconds };
}

function runLiblinear(args: Args, split: SplitSummary): Record<string, unknown> {
  const C = 1 / (args.lambda * split.trainRows);
  const modelPath = join(args.out, 'liblinear.model');
  const train = run(
    'liblinear-train',
    ['-s', '0', '-c', String(C), '-e', String(args.eps), '-B', '1', join(args.out, 'train.svm'), modelPath],
    'liblinear-train',
  );
  const model = readLiblinearModel(modelPath);
  const { scores, y } = scoreLibsvm(join(args.out, 'test.svm'), model);
  const metrics = heldOutMetrics(scores, y);
  // Cross-check against liblinear's own probabilities (printed to 6 digits).
  const predictions = join(args.out, 'liblinear.predictions');
  run('liblinear-predict', ['-b', '1', join(args.out, 'test.svm'), modelPath, predictions], 'liblinear-predict');
  const out = readFileSync(predictions, 'utf8').split('\n');
  const labels = out[0]!.split(' ').slice(1);
  const column = labels.indexOf('1') + 1;
  let maxDifference = 0;
  for (let i = 0; i < scores.length; i++) {
    const p = Number(out[i + 1]!.split(' ')[column]);
    maxDifference = Math.max(maxDifference, Math.abs(p - 1 / (1 + Math.exp(-scores[i]!))));
  }
  let norm2 = 0;
  for (const w of model.w) norm2 += w * w;
  const b = model.sign * model.biasWeight * model.biasValue;
  return {
    solver: 'liblinear-train -s 0 (L2-regularised logistic regression, primal trust-region Newton)',
    C,
    eps: args.eps,
    trainSeconds: train.seconds,
    bias: b,
    weightNorm: Math.sqrt(norm2),
    /** The term liblinear adds that dpt's objective lacks: λ/2·b² (in mean-loss units). */
    biasPenalty: (args.lambda / 2) * model.biasWeight * model.biasWeight,
    heldOut: metrics,
    maxProbabilityDifferenceFromPredict: maxDifference,
  };
}

/** Buckets of 2^B holding two or more of the training features, and the features in them. */
function countCollisions(split: SplitSummary, bits: number): Record<string, number> {
  const encoder = new TextEncoder();
  const seen = new Map<number, number>();
  for (const name of split.featureNames) {
    const bucket = murmur3_x86_32(encoder.encode(name), 0) % 2 ** bits;
    seen.set(bucket, (seen.get(bucket) ?? 0) + 1);
  }
  let buckets = 0;
  let features = 0;
  for (const count of seen.values()) {
    if (count > 1) {
      buckets++;
      features += count;
    }
  }
  return { features: split.featureNames.length, collidingBuckets: buckets, featuresInCollidingBuckets: features };
}

/** The dpt train command of the demo: the same features (hashed, or liblinear's one-hot file), the same λ. */
export function dptTrainArgs(args: Args, modelPath: string): string[] {
  const data =
    args.dptInput === 'hashed'
      ? ['--data', join(args.out, 'train.csv'), '--hash-bits', String(args.hashBits), '--categorical', CATEGORICAL.join(','), '--cross', CROSS.join(':')]
      : ['--data', join(args.out, 'train.svm')];
  return [
    'train',
    ...data,
    '--l2',
    String(args.lambda),
    ...(args.l1 === 0 ? [] : ['--l1', String(args.l1)]),
    '--optimizer',
    args.optimizer,
    '--lr',
    String(args.lr),
    '--lr-schedule',
    args.lrSchedule,
    '--epochs',
    String(args.epochs),
    '--batch-size',
    String(args.batchSize),
    '--workers',
    String(args.workers),
    '--out',
    modelPath,
  ];
}

function runDpt(args: Args): Record<string, unknown> {
  const modelPath = join(args.out, `dpt-${args.dptInput}.json`);
  const trainArgs = dptTrainArgs(args, modelPath);
  const command = `dpt ${trainArgs.join(' ')}`;
  const started = process.hrtime.bigint();
  const train = spawnSync(process.execPath, [args.dptCli, ...trainArgs], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const trainSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (train.status !== 0) return { pending: `dpt train exited ${train.status}: ${train.stderr.trim().split('\n').at(-1)}`, command };
  const steps = /trained (\d+) steps in ([\d.]+) s/.exec(train.stderr + train.stdout);
  const heldOutData = join(args.out, args.dptInput === 'hashed' ? 'test.csv' : 'test.svm');
  const evaluate = run(process.execPath, [CLI, 'evaluate', '--model', modelPath, '--data', heldOutData, '--json'], 'dpt evaluate');
  const metrics = JSON.parse(evaluate.result.stdout) as { rows: number; logLoss: number; accuracy: number; rocAuc: number | null };
  // L1 (--l1, ftrl) makes weights exactly 0: how many are not.
  const { weights } = JSON.parse(readFileSync(modelPath, 'utf8')) as { weights: number[] | { values: number[] } };
  const nonZeroWeights = (Array.isArray(weights) ? weights : weights.values).filter((w) => w !== 0).length;
  return {
    command,
    input: args.dptInput,
    trainSeconds,
    steps: steps === null ? null : Number(steps[1]),
    stepSeconds: steps === null ? null : Number(steps[2]),
    heldOut: { rows: metrics.rows, logLoss: metrics.logLoss, accuracy: metrics.accuracy, auc: metrics.rocAuc },
    nonZeroWeights,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  mkdirSync(args.out, { recursive: true });
  const started = process.hrtime.bigint();
  const split = await splitAndEncode(args);
  const splitSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stderr.write(
    `split: ${split.trainRows} train rows, ${split.testRows} held-out rows, ${split.features} one-hot features (${splitSeconds.toFixed(1)} s)\n`,
  );
  const collisions = countCollisions(split, args.hashBits);
  const liblinear = args.isLiblinear ? runLiblinear(args, split) : { skipped: '--no-liblinear' };
  const dpt = args.isDpt ? runDpt(args) : { skipped: '--no-dpt' };
  const { featureNames: _names, ...splitSummary } = split;
  const results = {
    data: args.data,
    seed: args.seed,
    lambda: args.lambda,
    hashBits: args.hashBits,
    split: splitSummary,
    collisions,
    liblinear,
    dpt,
  };
  writeJson(join(args.out, 'results.json'), results);
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
}

if (process.argv[1]?.endsWith('flights-sparse.js')) {
  main().catch((error: unknown) => {
    process.stderr.write(`bench:flights: ${(error as Error).message}\n`);
    process.exitCode = 1;
  });
}
