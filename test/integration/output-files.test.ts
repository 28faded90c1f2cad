// The files dpt writes (issue #10, items 9-12), through the real CLI: every output path is
// checked before any work (missing or read-only directory, a device or FIFO as target, the same
// file as an input or another output: exit 2, one line naming the flag); a full disk keeps the
// previous checkpoint and model file byte for byte and leaves no temporary file; Ctrl-C during
// `dpt data generate` leaves nothing behind. The full and read-only disks are a small tmpfs and a
// read-only bind mount in a private mount namespace (unshare -m), so nothing outside changes;
// those cases need root and are skipped, saying why, without it (CI runs as root).

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, killAll, REPO, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
const CSV = join(REPO, 'data', 'breast_cancer.csv');
/** Training flags of a short run on the checked-in data set. */
const QUICK = ['--epochs', '1', '--workers', '1', '--batch-size', '128', '--no-pin'];

const isRoot = process.getuid?.() === 0;
const hasMountNamespace = isRoot && spawnSync('unshare', ['-m', '--propagation', 'private', 'true']).status === 0;
const NAMESPACE_SKIP = isRoot ? 'unshare -m is unavailable' : 'needs root for a private mount namespace (CI runs as root)';
if (!hasMountNamespace) process.stderr.write(`output-files: the full-disk and read-only cases are skipped: ${NAMESPACE_SKIP}\n`);

/** Shell scripts run in a private mount namespace; each is recorded and killed by PID if it outlives its deadline. */
const scripts = new Set<ChildProcess>();

afterEach(() => {
  killAll();
  for (const child of scripts) killGroup(child);
  scripts.clear();
});
afterAll(() => directory.remove());

/** Kills a namespace script and everything it started (its own process group), by PID. */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // The group has already exited.
  }
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function leftovers(path: string): string[] {
  return readdirSync(path).filter((name) => name.endsWith('.tmp'));
}

/** Runs `script` with sh in a new mount namespace (mounts vanish with it); resolves with its exit code and output. */
function runInMountNamespace(script: string, env: Record<string, string>, timeoutMs = 240_000): Promise<{ code: number | null; stderr: string }> {
  const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
    env: { ...process.env, NODE: process.execPath, CLI, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // its own process group: a timeout kills the script and the dpt it runs
  });
  scripts.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new Error(`namespace script still running after ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      scripts.delete(child);
      resolve({ code, stderr });
    });
  });
}

/** The result of one command a namespace script ran: exit code, stdout and stderr files written by `run` below. */
function outcome(out: string, name: string): { code: number; stdout: string; stderr: string } {
  return {
    code: Number(readFileSync(join(out, `${name}.rc`), 'utf8')),
    stdout: readFileSync(join(out, `${name}.out`), 'utf8'),
    stderr: readFileSync(join(out, `${name}.err`), 'utf8'),
  };
}

/** Shell function: run NAME COMMAND… records the exit code and output of a dpt command in $OUT. */
const RUN_FUNCTION = 'run() { name=$1; shift; "$NODE" "$CLI" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; echo $? >"$OUT/$name.rc"; }';

/** A one-line usage error naming `flag`: exit 2, and the run never started. */
function expectRefused(result: { code: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1);
  expect(result.stderr.trim()).toMatch(pattern);
  expect(result.stderr).toMatch(/\(DPT_CONFIG\)$/m);
  expect(result.code).toBe(2);
  expect(result.stdout).not.toMatch(/listening|trained|joined|generated|converted/);
}

let model: string;
beforeAll(async () => {
  model = join(directory.path, 'trained.json');
  const trained = await runCli(['train', '--data', CSV, ...QUICK, '--out', model], {}, 120_000);
  expect(trained.code, trained.stderr).toBe(0);
}, 180_000);

describe('output paths are checked before any work', () => {
  it('refuses a missing directory for every output of train, coordinator, predict and data (exit 2, the flag named)', async () => {
    const missing = join(directory.path, 'no-such-directory');
    const cases: [string[], RegExp][] = [
      [['train', '--data', CSV, ...QUICK, '--out', join(missing, 'model.json')], /^dpt: --out .*model\.json: the directory .*no-such-directory does not exist/],
      [
        ['train', '--data', CSV, ...QUICK, '--metrics', join(missing, 'm.jsonl')],
        /^dpt: --metrics .*m\.jsonl: the directory .*no-such-directory does not exist/,
      ],
      [
        ['train', '--data', CSV, ...QUICK, '--checkpoint', join(missing, 'c.ckpt')],
        /^dpt: --checkpoint .*c\.ckpt: the directory .*no-such-directory does not exist/,
      ],
      [
        ['coordinator', '--data', CSV, '--port', '0', '--host', '127.0.0.1', '--join-timeout', '3000', '--out', join(missing, 'model.json')],
        /^dpt: --out .*model\.json: the directory .*no-such-directory does not exist/,
      ],
      [
        ['coordinator', '--data', CSV, '--port', '0', '--host', '127.0.0.1', '--join-timeout', '3000', '--checkpoint', join(missing, 'c.ckpt')],
        /^dpt: --checkpoint .*c\.ckpt: the directory .*no-such-directory does not exist/,
      ],
      [['predict', '--model', model, '--data', CSV, '--out', join(missing, 'p.csv')], /^dpt: --out .*p\.csv: the directory .*no-such-directory does not exist/],
      [
        ['data', 'generate', '--rows', '100', '--features', '2', '--out', join(missing, 'g.dpt')],
        /^dpt: --out .*g\.dpt: the directory .*no-such-directory does not exist/,
      ],
      [['data', 'convert', CSV, join(missing, 'c.dpt')], /^dpt: <out> .*c\.dpt: the directory .*no-such-directory does not exist/],
    ];
    for (const [args, pattern] of cases) expectRefused(await runCli(args, {}, 120_000), pattern);
  }, 600_000);

  it.skipIf(!hasMountNamespace)(
    'refuses a read-only directory for every output, as root too (a read-only bind mount)',
    async () => {
      const readOnly = join(directory.path, 'read-only');
      const out = join(directory.path, 'read-only-results');
      mkdirSync(readOnly);
      mkdirSync(out);
      const script = `${RUN_FUNCTION}
      mount --bind "$RO" "$RO" && mount -o remount,bind,ro "$RO" || exit 90
      run train-out train --data "$CSV" ${QUICK.join(' ')} --out "$RO/model.json"
      run train-metrics train --data "$CSV" ${QUICK.join(' ')} --metrics "$RO/m.jsonl"
      run coordinator-checkpoint coordinator --data "$CSV" --port 0 --host 127.0.0.1 --join-timeout 3000 --checkpoint "$RO/c.ckpt"
      run predict predict --model "$MODEL" --data "$CSV" --out "$RO/p.csv"
      run generate data generate --rows 100 --features 2 --out "$RO/g.dpt"
      run convert data convert "$CSV" "$RO/c.dpt"`;
      const result = await runInMountNamespace(script, { RO: readOnly, OUT: out, CSV, MODEL: model });
      expect(result.code, result.stderr).toBe(0);
      const cannotCreate = (flag: string, file: string): RegExp =>
        new RegExp(`^dpt: ${flag} .*${file}: cannot create files in .*read-only \\(EROFS: read-only file system\\)`);
      expectRefused(outcome(out, 'train-out'), cannotCreate('--out', 'model\\.json'));
      expectRefused(outcome(out, 'train-metrics'), cannotCreate('--metrics', 'm\\.jsonl'));
      expectRefused(outcome(out, 'coordinator-checkpoint'), cannotCreate('--checkpoint', 'c\\.ckpt'));
      expectRefused(outcome(out, 'predict'), cannotCreate('--out', 'p\\.csv'));
      expectRefused(outcome(out, 'generate'), cannotCreate('--out', 'g\\.dpt'));
      expectRefused(outcome(out, 'convert'), cannotCreate('<out>', 'c\\.dpt'));
    },
    600_000,
  );

  it('refuses a FIFO or a device as --out or --checkpoint and leaves the node in place', async () => {
    const fifo = join(directory.path, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expectRefused(await runCli(['train', '--data', CSV, ...QUICK, '--out', fifo], {}, 120_000), /^dpt: --out .*fifo: is not a regular file \(a FIFO\)/);
    expectRefused(
      await runCli(['train', '--data', CSV, ...QUICK, '--checkpoint', fifo], {}, 120_000),
      /^dpt: --checkpoint .*fifo: is not a regular file \(a FIFO\)/,
    );
    expectRefused(await runCli(['predict', '--model', model, '--data', CSV, '--out', fifo]), /^dpt: --out .*fifo: is not a regular file \(a FIFO\)/);
    expectRefused(await runCli(['data', 'generate', '--rows', '100', '--features', '2', '--out', fifo]), /^dpt: --out .*fifo: is not a regular file/);
    expect(statSync(fifo).isFIFO()).toBe(true);
    if (isRoot) {
      // A character device of our own (the numbers of /dev/null), so the real /dev/null is never at risk.
      const device = join(directory.path, 'null-device');
      execFileSync('mknod', [device, 'c', '1', '3']);
      expectRefused(
        await runCli(['train', '--data', CSV, ...QUICK, '--out', device], {}, 120_000),
        /^dpt: --out .*null-device: is not a regular file \(a character device\)/,
      );
      expect(statSync(device).isCharacterDevice()).toBe(true);
    }
  }, 600_000);

  it('still streams --metrics into a FIFO (a reader at the other end), and refuses a socket', async () => {
    const fifo = join(directory.path, 'metrics-fifo');
    execFileSync('mkfifo', [fifo]);
    let received = '';
    const reader = createReadStream(fifo, 'utf8');
    reader.on('data', (chunk) => {
      received += String(chunk);
    });
    const ended = new Promise<void>((resolve) => reader.on('end', () => resolve()));
    const result = await runCli(['train', '--data', CSV, ...QUICK, '--metrics', fifo], {}, 120_000);
    if (result.code !== 0) writeFileSync(fifo, ''); // unblocks the reader's open if dpt never opened the FIFO
    expect(result.code, result.stderr).toBe(0);
    await Promise.race([ended, new Promise((_, reject) => setTimeout(() => reject(new Error('the FIFO reader saw no end within 30 s')), 30_000).unref())]);
    expect(received).toMatch(/^\{"type":"step","step":0,/m);
    expect(received).toMatch(/^\{"type":"eval","epoch":0,/m);
    // Spawned with pipes, the child's stdout is a socket: /dev/stdout cannot be opened there.
    expectRefused(
      await runCli(['train', '--data', CSV, ...QUICK, '--metrics', '/dev/stdout'], {}, 120_000),
      /^dpt: --metrics \/dev\/stdout: is a socket, which cannot be opened as a file/,
    );
  }, 180_000);

  it('refuses an output that is the same file as an input or as another output, naming both flags; the input is untouched', async () => {
    const data = join(directory.path, 'same.csv');
    copyFileSync(CSV, data);
    const before = sha256(data);
    const modelBefore = sha256(model);
    const alias = join(directory.path, 'alias.csv');
    symlinkSync(data, alias);
    const hardLink = join(directory.path, 'hard-link.csv');
    linkSync(data, hardLink);
    const cases: [string[], RegExp][] = [
      [['train', '--data', data, ...QUICK, '--metrics', data], /^dpt: --metrics .*same\.csv and --data .*same\.csv are the same file/],
      [['train', '--data', data, ...QUICK, '--out', alias], /^dpt: --out .*alias\.csv and --data .*same\.csv are the same file/],
      [['train', '--data', data, ...QUICK, '--checkpoint', hardLink], /^dpt: --checkpoint .*hard-link\.csv and --data .*same\.csv are the same file/],
      [
        ['train', '--data', data, ...QUICK, '--out', join(directory.path, 'both.json'), '--metrics', join(directory.path, '.', 'both.json')],
        /^dpt: --out .*both\.json and --metrics .*both\.json are the same file/,
      ],
      [
        ['coordinator', '--data', data, '--port', '0', '--host', '127.0.0.1', '--join-timeout', '3000', '--metrics', alias],
        /^dpt: --metrics .*alias\.csv and --data .*same\.csv are the same file/,
      ],
      [['predict', '--model', model, '--data', data, '--out', model], /^dpt: --out .*trained\.json and --model .*trained\.json are the same file/],
      [['data', 'convert', data, alias], /^dpt: <out> .*alias\.csv and <in> .*same\.csv are the same file/],
    ];
    for (const [args, pattern] of cases) expectRefused(await runCli(args, {}, 120_000), pattern);
    expect(sha256(data)).toBe(before);
    expect(sha256(model)).toBe(modelBefore);
  }, 600_000);
});

describe('a full disk', () => {
  it.skipIf(!hasMountNamespace)(
    'keeps the previous checkpoint and model file byte for byte, cuts --metrics at a whole line, leaves no temporary file (a full tmpfs)',
    async () => {
      const data = join(directory.path, 'wide.dpt');
      // 300 features: a checkpoint takes two 4 KiB pages and the model file several, so one free page means a short write.
      const generated = await runCli(['data', 'generate', '--rows', '2000', '--features', '300', '--out', data, '--quiet']);
      expect(generated.code, generated.stderr).toBe(0);
      const mountPoint = join(directory.path, 'small-disk');
      const out = join(directory.path, 'full-disk-results');
      mkdirSync(mountPoint);
      mkdirSync(out);
      const train = `train --data "$DATA" --epochs 1 --workers 1 --batch-size 256 --no-pin`;
      // --metrics is flushed before every checkpoint: with one per step, lines fill the last page one flush at a time.
      const script = `${RUN_FUNCTION}
        mount -t tmpfs -o size=512k dpt-full-disk "$MNT" || exit 90
        run first ${train} --checkpoint "$MNT/run.ckpt" --out "$MNT/model.json"
        cp "$MNT/run.ckpt" "$OUT/ckpt.before" && cp "$MNT/model.json" "$OUT/model.before" || exit 91
        free=$(( $(stat -f -c %a "$MNT") * $(stat -f -c %S "$MNT") ))
        head -c $((free - 4096)) /dev/zero >"$MNT/filler" || exit 92
        stat -f -c %a "$MNT" >"$OUT/free-pages"
        run checkpoint ${train} --seed 2 --checkpoint "$MNT/run.ckpt" --out "$OUT/model-2.json"
        run model ${train} --seed 3 --out "$MNT/model.json"
        run generate data generate --rows 20000 --features 20 --out "$MNT/generated.dpt" --quiet
        run metrics ${train} --epochs 40 --seed 4 --metrics "$MNT/metrics.jsonl" --checkpoint "$OUT/metrics-run.ckpt" --checkpoint-every 1
        ls -a "$MNT" >"$OUT/listing"
        cp "$MNT/run.ckpt" "$OUT/ckpt.after" && cp "$MNT/model.json" "$OUT/model.after" && cp "$MNT/metrics.jsonl" "$OUT/metrics.after" || exit 93`;
      const result = await runInMountNamespace(script, { MNT: mountPoint, OUT: out, DATA: data });
      expect(result.code, result.stderr).toBe(0);
      expect(outcome(out, 'first').code, outcome(out, 'first').stderr).toBe(0);
      expect(readFileSync(join(out, 'free-pages'), 'utf8').trim()).toBe('1');

      // A checkpoint that does not fit: a warning, the run goes on, the previous checkpoint stays.
      const checkpoint = outcome(out, 'checkpoint');
      expect(checkpoint.stderr).toMatch(
        /^dpt: warning: checkpoint of step \d+ not written: .*run\.ckpt: cannot write \(ENOSPC: no space left on device\); the previous file, if any, is unchanged; training goes on$/m,
      );
      expect(checkpoint.code, checkpoint.stderr).toBe(0);
      expect(checkpoint.stdout).toMatch(/trained 8 steps/);
      expect(sha256(join(out, 'ckpt.after'))).toBe(sha256(join(out, 'ckpt.before')));

      // A model file that does not fit: exit 1, one line, the previous model file stays.
      const modelRun = outcome(out, 'model');
      expect(modelRun.code, modelRun.stderr).toBe(1);
      const modelErrors = modelRun.stderr.split('\n').filter((line) => line.startsWith('dpt:'));
      expect(modelErrors).toEqual([
        expect.stringMatching(/^dpt: .*model\.json: cannot write \(ENOSPC: no space left on device\); the previous file, if any, is unchanged \(DPT_WRITE\)$/),
      ]);
      expect(modelRun.stderr).not.toMatch(/\n\s+at /);
      expect(sha256(join(out, 'model.after'))).toBe(sha256(join(out, 'model.before')));

      // Generated data that does not fit: exit 1, one line, nothing left.
      const generate = outcome(out, 'generate');
      expect(generate.code, generate.stderr).toBe(1);
      expect(generate.stderr.trim()).toMatch(/^dpt: .*generated\.dpt: cannot write \(ENOSPC: no space left on device\).*\(DPT_WRITE\)$/);

      // The loss stream: cut back to its last complete line, one warning, training goes on.
      const metrics = outcome(out, 'metrics');
      expect(metrics.code, metrics.stderr).toBe(0);
      expect(metrics.stderr).toMatch(
        /^dpt: warning: --metrics .*metrics\.jsonl: cannot append \(ENOSPC: no space left on device\): the loss stream stops here; the file ends at its last complete line/m,
      );
      const lines = readFileSync(join(out, 'metrics.after'), 'utf8');
      expect(lines.endsWith('\n')).toBe(true);
      const events = lines
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as { type: string });
      expect(events.length).toBeGreaterThan(10);
      expect(events.length).toBeLessThan(40 * 8); // the fault happened: not every step is there

      const listing = readFileSync(join(out, 'listing'), 'utf8')
        .split('\n')
        .filter((name) => name !== '');
      expect(listing.sort()).toEqual(['.', '..', 'filler', 'metrics.jsonl', 'model.json', 'run.ckpt']);
    },
    600_000,
  );
});

/** Polls (bounded) until `directory` holds a temporary file with bytes in it: the writer is under way. */
async function waitForPartialFile(target: string, cli: { stderr(): string }): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!leftovers(target).some((name) => statSync(join(target, name)).size > 0)) {
    if (Date.now() > deadline) throw new Error(`no temporary file appeared within 60 s; stderr:\n${cli.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('Ctrl-C during dpt data generate and convert', () => {
  it('exits 130 and leaves neither a temporary file nor a partial output', async () => {
    const target = join(directory.path, 'interrupted');
    mkdirSync(target);
    const out = join(target, 'big.dpt');
    // 60 million rows (1.1 GB) take about 15 s here: the interrupt comes long before the end.
    const generate = startCli(['data', 'generate', '--rows', '60000000', '--features', '4', '--out', out, '--quiet']);
    await waitForPartialFile(target, generate);
    process.kill(generate.pid, 'SIGINT');
    const { code, signal } = await generate.exited(60_000);
    expect({ code, signal }).toEqual({ code: 130, signal: null });
    expect(generate.stderr()).toMatch(/dpt: stopped by SIGINT; the output was not written/);
    expect(readdirSync(target)).toEqual([]);
    expect(existsSync(out)).toBe(false);
  }, 180_000);

  it('exits 130 from a conversion too, leaving no temporary file and no output', async () => {
    const input = join(directory.path, 'long.csv.gz');
    // 20 million rows of a repeated line: 0.4 MB of gzip, about half a minute to convert here.
    await new Promise<void>((resolve, reject) => {
      const gzip = createGzip();
      const file = createWriteStream(input);
      gzip.pipe(file);
      file.on('finish', resolve);
      file.on('error', reject);
      gzip.write('a,b,label\n');
      const rows = Buffer.from('1.5,2.25,0\n'.repeat(100_000));
      let written = 0;
      const writeMore = (): void => {
        while (written < 200) {
          written++;
          if (!gzip.write(rows)) {
            gzip.once('drain', writeMore);
            return;
          }
        }
        gzip.end();
      };
      writeMore();
    });
    const target = join(directory.path, 'interrupted-convert');
    mkdirSync(target);
    const out = join(target, 'long.dpt');
    const convert = startCli(['data', 'convert', input, out, '--quiet']);
    await waitForPartialFile(target, convert);
    process.kill(convert.pid, 'SIGINT');
    const { code, signal } = await convert.exited(60_000);
    expect({ code, signal }).toEqual({ code: 130, signal: null });
    expect(convert.stderr()).toMatch(/dpt: stopped by SIGINT; the output was not written/);
    expect(readdirSync(target)).toEqual([]);
  }, 180_000);
});
