// What `dpt train` writes to a terminal (issue #14 item 1): run in a real pseudo-terminal
// (util-linux `script`) with a worker that holds a step, so straggling chunks are backed up for
// real, and the screen is rebuilt from the captured bytes (carriage returns, erase sequences).
// No log line may share a row with the progress line; backups are counted per epoch, listed with
// --verbose; off a terminal every line is whole.

import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CliProcess, killAll, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startHonestWorker } from '../helpers/fake-worker.js';
import { openMonitor } from '../helpers/monitor.js';
import { renderScreen } from '../helpers/terminal-screen.js';

const directory = temporaryDirectory();
const TOKEN = 'terminal-token';

afterAll(() => {
  killAll();
  directory.remove();
});

/** Runs the trailing command in a pseudo-terminal 150 columns wide; exec keeps the PID startCli records (script's). */
const IN_PTY = ['sh', '-c', 'exec script -qfec "stty cols 150 rows 50; exec $*" /dev/null', 'sh'];

let hasScript = true;
try {
  execFileSync('script', ['--version'], { stdio: 'ignore' });
} catch {
  hasScript = false;
}

const EPOCH_LINE =
  /^epoch \d+\/40 {2}step \d+\/440 {2}loss \d+\.\d{4} {2}[\d,]+ rows\/s( {2}ETA \S+)?( {2}train acc \d\.\d{4} {2}val loss \d+\.\d{4} acc \d\.\d{4})?$/;
const BACKUP_SUMMARY =
  /^epoch \d+: \d+ straggling chunk\(s\) in \d+ step\(s\) or pass\(es\) were also given to idle workers \(backup tasks; --verbose lists them\)$/;
const BACKUP_DETAIL =
  /^(step \d+|feature statistics over the [\d,]+ \w+ rows|evaluation over the [\d,]+ \w+ rows): \d+ straggling chunk\(s\) also given to \d+ idle worker\(s\)$/;

/**
 * `dpt train` with 2 local workers and an in-test honest worker over TCP that holds the first step
 * from step 5 on that it is sent. With no step deadline only backup tasks can cover its chunks: the step's commit
 * (seen on the monitor stream) proves they ran; then the worker is released.
 */
async function trainWithStraggler(isTty: boolean, extra: string[]): Promise<CliProcess> {
  const out = join(directory.path, `model-${isTty}-${extra.join('')}.json`);
  const args = ['train', '--data', 'data/breast_cancer.csv', '--batch-size', '50', '--chunks', '8', '--epochs', '40', '--val-split', '0.1'];
  args.push('--workers', '2', '--no-pin', '--token', TOKEN, '--step-timeout', '600000', '--out', out, ...extra);
  const run = startCli(args, {}, isTty ? IN_PTY : []);
  const ended = run.exited(180_000).then(({ code }): never => {
    throw new Error(`dpt train ended (${code}) before the straggler was backed up\n${run.stdout()}\n${run.stderr()}`);
  });
  const [, port] = await Promise.race([run.waitForLine(/coordinator listening on port (\d+)/, 60_000), ended]);
  const monitor = await openMonitor(`ws://127.0.0.1:${port}/monitor`, { authorization: `Bearer ${TOKEN}` });
  const straggler = startHonestWorker(`ws://127.0.0.1:${port}`, TOKEN);
  // Step 5 or later: the progress line is on screen by then (it is first drawn at step 1).
  const held = await Promise.race([straggler.holdAt(5), ended]);
  await Promise.race([monitor.waitFor((message) => message.type === 'step' && message.step === held, `step ${held} committed`, 120_000), ended]);
  straggler.release();
  const { code } = await run.exited(180_000);
  expect(code, `${run.stdout()}\n${run.stderr()}`).toBe(0);
  return run;
}

/** The screen's non-empty rows, each checked: no progress line shares a row with anything else. */
function checkedRows(output: string): string[] {
  const rows = renderScreen(output).filter((row) => row !== '');
  for (const row of rows) {
    // A progress line starts its row and is the whole row.
    if (/ {2}loss |ETA /.test(row)) expect(row, `a glued row:\n${rows.join('\n')}`).toMatch(EPOCH_LINE);
    expect(row.search(/epoch \d+\/\d+/), `a glued row: ${row}`).toBeLessThanOrEqual(0);
    if (/straggling/.test(row)) expect(row, `a glued row: ${row}`).toMatch(new RegExp(`${BACKUP_SUMMARY.source}|${BACKUP_DETAIL.source}`));
    if (/dashboard http/.test(row)) expect(row).toMatch(/^dashboard http/);
    if (/worker \d+ (?:\([^)]*\) )?joined/.test(row)) expect(row).toMatch(/^worker \d+ (?:\([^)]*\) )?joined from /);
  }
  return rows;
}

describe.skipIf(!hasScript)('dpt train on a terminal', () => {
  it('keeps every log line off the progress line, and counts the backups per epoch', async () => {
    const run = await trainWithStraggler(true, []);
    const raw = run.stdout(); // a pseudo-terminal has one output: stdout and stderr both
    const rows = checkedRows(raw);
    expect(rows.filter((row) => EPOCH_LINE.test(row))).toHaveLength(40);
    expect(rows.filter((row) => BACKUP_SUMMARY.test(row)).length).toBeGreaterThanOrEqual(1);
    expect(rows.filter((row) => BACKUP_DETAIL.test(row))).toEqual([]);
    // The statistics pass showed its progress on the live line, and in user's words.
    expect(raw).toMatch(/computing feature statistics over 512 training rows… \d+%/);
    expect(raw).not.toMatch(/stats pass/);
    // No ETA before 2 % of the steps (9 of 440) are done: today's code said "ETA 3m58s" at step 1.
    expect(raw).not.toMatch(/step [1-8]\/440 [^\r\n]*ETA/);
    expect(rows.some((row) => /^trained 440 steps in /.test(row))).toBe(true);
  }, 240_000);

  it('lists each backup task with --verbose, each on a row of its own', async () => {
    const run = await trainWithStraggler(true, ['--verbose']);
    const rows = checkedRows(run.stdout());
    expect(rows.filter((row) => BACKUP_DETAIL.test(row)).length).toBeGreaterThanOrEqual(1);
    expect(rows.filter((row) => EPOCH_LINE.test(row))).toHaveLength(40);
  }, 240_000);
});

describe('dpt train off a terminal', () => {
  it('writes whole lines, one per epoch, with no carriage return or escape sequence', async () => {
    const run = await trainWithStraggler(false, []);
    const stdout = run.stdout();
    const stderr = run.stderr();
    expect((stdout + stderr).includes('\r')).toBe(false);
    expect((stdout + stderr).includes(String.fromCharCode(0x1b))).toBe(false); // no escape sequence
    expect(stdout.split('\n').filter((line) => line.startsWith('epoch '))).toHaveLength(40);
    for (const line of stdout.split('\n').filter((candidate) => candidate.startsWith('epoch '))) expect(line).toMatch(EPOCH_LINE);
    expect(stderr).toMatch(/^computing feature statistics over 512 training rows…$/m);
    expect(stderr).toMatch(new RegExp(BACKUP_SUMMARY.source, 'm'));
    expect(stderr).not.toMatch(new RegExp(BACKUP_DETAIL.source, 'm'));
  }, 240_000);
});
