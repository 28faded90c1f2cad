// `npm run bench:sparse` (or `npm run bench -- --sparse`): issue #13's targets, measured by real
// `dpt train` runs with W local workers. The same rows are written twice as LIBSVM, with their
// features spread over D = 2^16 and over D = 2^24 buckets by one injective map each, so nnz,
// the touched coordinates and the arithmetic are equal and only D differs: the step time and the
// bytes per step per worker should follow nnz, not D. A third run with indices drawn uniformly
// over 2^24 shows the other regime (every entry its own coordinate: more touched coordinates
// than the 2^16 run can have, so its cost is the touched count's).
//
// Flags: --rows N (default 163,840 = 40 batches of 4,096), --nnz K (40), --batch B (4096),
// --workers W (2), --epochs E (3), --l2 λ (1e-4), --out PATH (bench/results/sparse-steps.json).

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StepEvent } from '../shared/events.js';
import { formatNumber, formatTable, median, REPO, RESULTS_DIR, writeJson } from './harness.js';

const CLI = join(REPO, 'dist', 'cli', 'main.js');
const RUN_TIMEOUT_MS = 600_000;
/** Fields per row (one entry each) and values per field: 40 × 1,500 = 60,000 features < 2^16. */
const VALUES_PER_FIELD = 1500;

interface Settings {
  readonly rows: number;
  readonly nnz: number;
  readonly batch: number;
  readonly workers: number;
  readonly epochs: number;
  readonly l2: number;
  readonly out: string;
}

interface RunResult {
  readonly label: string;
  readonly dims: number;
  readonly steps: number;
  readonly medianStepMs: number;
  readonly p90StepMs: number;
  /** Per worker: bytes of parts sent and of step/params messages received, per step (the coordinator's closing lines). */
  readonly sentBytesPerStep: number[];
  readonly receivedBytesPerStep: number[];
  readonly wallMs: number;
}

function parseArgs(argv: readonly string[]): Settings {
  const value = (flag: string, fallback: number): number => {
    const at = argv.indexOf(flag);
    if (at < 0) return fallback;
    const parsed = Number(argv[at + 1]);
    if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${flag} needs a positive number`);
    return parsed;
  };
  const outAt = argv.indexOf('--out');
  return {
    rows: value('--rows', 163_840),
    nnz: value('--nnz', 40),
    batch: value('--batch', 4096),
    workers: value('--workers', 2),
    epochs: value('--epochs', 3),
    l2: value('--l2', 1e-4),
    out: outAt >= 0 ? argv[outAt + 1]! : join(RESULTS_DIR, 'sparse-steps.json'),
  };
}

/** xorshift32: the same rows on every run of the bench. */
function random(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32;
  };
}

/** A Zipf-like draw over [0, n): small values far more often, as categories in click logs are. */
function zipf(next: () => number, n: number): number {
  return Math.min(n - 1, Math.floor(n ** next()) - 1);
}

/**
 * Writes the rows as LIBSVM with feature f (field·VALUES_PER_FIELD + value) at bucket map(f):
 * map(f) = (f · 2654435761) mod 2^bits, injective on [0, 2^bits) (an odd multiplier), so the 2^16
 * and 2^24 files hold the same rows over the same number of distinct coordinates. `uniform`
 * draws each entry's bucket uniformly instead. The label depends on a few fields (a learnable signal).
 */
async function writeLibsvm(path: string, settings: Settings, bits: number, uniform: boolean): Promise<{ dims: number; distinct: number }> {
  const next = random(12345);
  const spread = random(999);
  const out = createWriteStream(path);
  const mask = 2 ** bits;
  const lines: string[] = [];
  const seen = new Set<number>();
  const flush = async (): Promise<void> => {
    if (!out.write(lines.join(''))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    lines.length = 0;
  };
  for (let row = 0; row < settings.rows; row++) {
    const buckets = new Map<number, number>();
    let signal = 0;
    for (let field = 0; field < settings.nnz; field++) {
      const value = zipf(next, VALUES_PER_FIELD);
      if (field < 3) signal += value % 2 === 0 ? 0.5 : -0.5;
      const feature = field * VALUES_PER_FIELD + value;
      const bucket = uniform ? Math.floor(spread() * mask) : Number((BigInt(feature) * 2654435761n) % BigInt(mask));
      buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
      seen.add(bucket);
    }
    const label = next() < 1 / (1 + Math.exp(-signal)) ? 1 : 0;
    const entries = [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([bucket, count]) => `${bucket + 1}:${count}`);
    lines.push(`${label} ${entries.join(' ')}\n`);
    if (lines.length >= 4096) await flush();
  }
  await flush();
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  let largest = 0;
  for (const bucket of seen) largest = Math.max(largest, bucket);
  return { dims: largest + 1, distinct: seen.size };
}

/** `dpt train` on `data`; reads step times from --metrics and bytes per step from the closing lines. */
async function train(label: string, data: string, dims: number, directory: string, settings: Settings): Promise<RunResult> {
  const metrics = join(directory, `${label}.jsonl`);
  const args = [
    CLI,
    'train',
    '--data',
    data,
    '--workers',
    String(settings.workers),
    '--batch-size',
    String(settings.batch),
    '--epochs',
    String(settings.epochs),
    '--optimizer',
    'sgd',
    '--lr',
    '0.5',
    '--l2',
    String(settings.l2),
    '--metrics',
    metrics,
    '--out',
    join(directory, `${label}.json`),
  ];
  const started = performance.now();
  const { code, stderr, stdout } = await new Promise<{ code: number | null; stderr: string; stdout: string }>((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('exit', (exitCode) => {
      clearTimeout(timer);
      resolve({ code: exitCode, stderr, stdout });
    });
  });
  const wallMs = performance.now() - started;
  if (code !== 0) throw new Error(`dpt train (${label}) exited ${code}: ${stderr.slice(-2000)}`);
  const steps = readFileSync(metrics, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as { type: string })
    .filter((event): event is StepEvent => event.type === 'step');
  // The first epoch's first fifth warms the JIT and the kernels up: excluded.
  const timed = steps.slice(Math.floor(steps.length / 5)).map((event) => event.stepMs);
  const sorted = [...timed].sort((a, b) => a - b);
  const traffic = [...`${stdout}\n${stderr}`.matchAll(/\((\d+) bytes per step\); received \d+ bytes of step messages \((\d+) bytes per step\)/g)];
  return {
    label,
    dims,
    steps: steps.length,
    medianStepMs: median(timed),
    p90StepMs: sorted[Math.floor(sorted.length * 0.9)] ?? Number.NaN,
    sentBytesPerStep: traffic.map((match) => Number(match[1])),
    receivedBytesPerStep: traffic.map((match) => Number(match[2])),
    wallMs,
  };
}

export async function runSparseSteps(argv: readonly string[]): Promise<void> {
  const settings = parseArgs(argv);
  const directory = mkdtempSync(join(tmpdir(), 'dpt-bench-sparse-'));
  const log = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  try {
    const variants: { label: string; bits: number; uniform: boolean }[] = [
      { label: 'same-features-2^16', bits: 16, uniform: false },
      { label: 'same-features-2^24', bits: 24, uniform: false },
      { label: 'uniform-2^24', bits: 24, uniform: true },
    ];
    const results: RunResult[] = [];
    for (const variant of variants) {
      const data = join(directory, `${variant.label}.svm`);
      log(`writing ${settings.rows.toLocaleString('en-US')} rows × ${settings.nnz} entries (${variant.label}) …`);
      const { dims, distinct } = await writeLibsvm(data, settings, variant.bits, variant.uniform);
      log(`  D = ${dims.toLocaleString('en-US')}, ${distinct.toLocaleString('en-US')} distinct coordinates in the file`);
      log(`training ${variant.label}: W = ${settings.workers}, B = ${settings.batch}, ${settings.epochs} epochs …`);
      results.push(await train(variant.label, data, dims, directory, settings));
      rmSync(data, { force: true });
    }
    const base = results[0]!;
    log('\n== sparse steps: the same rows over D = 2^16 and 2^24 (median step, warm-up excluded) ==');
    log(
      formatTable(
        ['data', 'D', 'steps', 'median step ms', 'p90 ms', '× 2^16', 'part bytes/step/worker', 'received bytes/step/worker'],
        results.map((result) => [
          result.label,
          formatNumber(result.dims),
          String(result.steps),
          result.medianStepMs.toFixed(2),
          result.p90StepMs.toFixed(2),
          (result.medianStepMs / base.medianStepMs).toFixed(2),
          result.sentBytesPerStep.map((bytes) => formatNumber(bytes)).join(' / '),
          result.receivedBytesPerStep.map((bytes) => formatNumber(bytes)).join(' / '),
        ]),
      ),
    );
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeJson(settings.out, { settings, results, machine: { cpus: (await import('node:os')).cpus().length } });
    log(`\nresults written to ${settings.out}`);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

if (process.argv[1]?.endsWith('sparse-steps.js')) {
  runSparseSteps(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
