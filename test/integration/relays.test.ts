// Relays (issue #11 item 3): 64 worker processes behind 4 `dpt relay`s train the bits of one
// worker, every worker contributing to every step, and still the same bits when a relay is killed
// mid-run (its workers join another relay); workers behind relays and workers of the coordinator
// mix, a relay that leaves on SIGTERM hands its workers back and a relay's group recomputes a dead
// worker's chunks; tokens hold at both doors.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StepEvent } from '../../shared/events.js';
import { type CliProcess, killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { modelHash } from '../helpers/model-hash.js';
import { openMonitor } from '../helpers/monitor.js';
import { writeSeededDpt } from '../helpers/seeded-dpt.js';

const TOKEN = 'relay-secret';
const BEARER = { authorization: `Bearer ${TOKEN}` };
const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

/** A seeded .dpt file of `rows` × `D` with a learnable label (test/helpers/seeded-dpt.ts). */
function writeData(name: string, rows: number, D: number, seed: number): string {
  return writeSeededDpt(directory.path, name, rows, D, seed, (j) => Math.cos(j + 1));
}

function stepEvents(metrics: string): StepEvent[] {
  return readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as StepEvent)
    .filter((event) => event.type === 'step');
}

/** The bits of a 1-worker run with these flags. */
async function oneWorkerHash(name: string, flags: string[]): Promise<string> {
  const out = join(directory.path, `${name}-one.json`);
  const one = await runCli(['train', ...flags, '--workers', '1', '--out', out], {}, 120_000);
  expect(one.code, one.stderr).toBe(0);
  return modelHash(out);
}

interface Cluster {
  readonly coordinator: CliProcess;
  readonly port: string;
  readonly url: string;
  readonly out: string;
  readonly metrics: string;
}

/**
 * Patience for a loaded 2-CPU machine (64 Node.js processes start in tens of seconds, more under
 * load): joining, heartbeats and step deadlines that a slow start cannot trip, so every step's
 * contributors are the assignment's, not the scheduler's.
 */
const PATIENT = ['--heartbeat', '30000'];

function startCoordinator(name: string, flags: string[], workers: number): Promise<Cluster> {
  const out = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const coordinator = startCli([
    'coordinator',
    ...flags,
    '--backup-factor',
    '0',
    ...PATIENT,
    '--join-timeout',
    '300000',
    '--step-timeout',
    '120000',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--workers',
    String(workers),
    '--token',
    TOKEN,
    '--out',
    out,
    '--metrics',
    metrics,
  ]);
  return coordinator
    .waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/)
    .then(([, port]) => ({ coordinator, port: port as string, url: `ws://127.0.0.1:${port}`, out, metrics }));
}

/** Starts a relay of the coordinator at `url` on a port of its choosing; resolves with it and its URL once it listens. */
async function startRelay(url: string, token = TOKEN): Promise<{ relay: CliProcess; url: string }> {
  const relay = startCli([
    'relay',
    '--connect',
    url,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--token',
    token,
    '--backup-factor',
    '0',
    ...PATIENT,
    '--step-timeout',
    '120000',
    '--connect-timeout',
    '300000',
  ]);
  const [, port] = await relay.waitForLine(/^relay listening on ws:\/\/127\.0\.0\.1:(\d+)$/m, 60_000);
  return { relay, url: `ws://127.0.0.1:${port}` };
}

function startWorker(urls: string[], token = TOKEN): CliProcess {
  return startCli(['worker', '--connect', urls.join(','), '--token', token, '--memory-budget', '64', ...PATIENT, '--connect-timeout', '300000']);
}

/** `promise`, or its failure with the last lines of each process's stderr: what a wait that timed out was waiting on. */
async function explained<T>(promise: Promise<T>, processes: CliProcess[]): Promise<T> {
  try {
    return await promise;
  } catch (error) {
    const tails = processes.map((process) => `--- pid ${process.pid}:\n${process.stderr().split('\n').slice(-15).join('\n')}`);
    throw new Error(`${(error as Error).message}\n${tails.join('\n')}`);
  }
}

describe('relays', () => {
  it('64 workers behind 4 relays train the bits of one worker, all 64 in every step; a relay killed mid-run changes no bit', { timeout: 420_000 }, async () => {
    // B = 2048: 64 chunks by default, so each of the 64 workers gets one chunk of every step.
    // 12 epochs of 4 steps: after a kill at step 4 or so, time for its workers to join the next relay.
    const flags = ['--data', writeData('sixty-four', 8192, 10, 7), '--epochs', '12', '--batch-size', '2048'];
    const expected = await oneWorkerHash('sixty-four', flags);
    const cluster = await startCoordinator('sixty-four', flags, 64);
    const relays = await Promise.all(Array.from({ length: 4 }, () => startRelay(cluster.url)));
    // Worker i belongs to relay ⌊i/16⌋; when that relay dies it joins the next one.
    const workers = Array.from({ length: 64 }, (_, i) => {
      const own = Math.floor(i / 16);
      return startWorker([relays[own]!.url, relays[(own + 1) % 4]!.url]);
    });
    const monitor = await openMonitor(`${cluster.url}/monitor`, BEARER);
    const seen = await explained(
      monitor.waitFor((message) => message.type === 'step' && message.step >= 4, 'step 4', 300_000),
      [cluster.coordinator, ...relays.map(({ relay }) => relay), workers[0]!],
    );
    const killedAt = (seen as StepEvent).step;
    const victim = relays[1]!.relay;
    process.kill(victim.pid, 'SIGKILL');
    expect((await victim.exited(10_000)).signal).toBe('SIGKILL');
    await cluster.coordinator.waitForLine(/^relay \d+(?: \([^)]*\))? left: /m, 30_000);
    // Its 16 workers reconnect to the next relay, which then stands for 32.
    await cluster.coordinator.waitForLine(/^relay \d+(?: \([^)]*\))? now has 32 worker\(s\)$/m, 60_000);

    const { code } = await cluster.coordinator.exited(240_000);
    expect(code, cluster.coordinator.stderr().slice(-3000)).toBe(0);
    for (const { relay } of relays.filter(({ relay }) => relay !== victim)) expect((await relay.exited(30_000)).code).toBe(0);
    for (const worker of workers) expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    expect(modelHash(cluster.out)).toBe(expected);

    const steps = stepEvents(cluster.metrics);
    expect(steps.map((event) => event.step)).toEqual(Array.from({ length: 48 }, (_, i) => i));
    // Every worker behind the relays computed a chunk of every step before the kill (no backups:
    // each relay's part says how many of its group computed it), and all 64 again once the
    // killed relay's workers had joined the next one.
    expect(steps.filter((event) => event.step <= killedAt).map((event) => event.workers)).toEqual(Array(killedAt + 1).fill(64));
    expect(steps.at(-1)?.workers).toBe(64);
    expect(workers.filter((worker) => /lost the coordinator at ws:\/\/127\.0\.0\.1:\d+ .*reconnecting to/.test(worker.stderr()))).toHaveLength(16);
    // The coordinator itself ends with three connections, not 64: each sent one part a step (its
    // 16 or 32 chunks are one aligned subtree), except the steps it also recomputed a lost share.
    const counts = [...cluster.coordinator.stderr().matchAll(/^worker \d+ sent (\d+) step part\(s\)/gm)];
    expect(counts).toHaveLength(3);
    for (const [, parts] of counts) expect(Number(parts)).toBeLessThanOrEqual(48 + 2);
  });

  it('workers behind relays and workers of the coordinator share every step; a relay leaving on SIGTERM hands its workers back, a relay loses one', {
    timeout: 300_000,
  }, async () => {
    // With a validation split: the relays also split and merge the passes over the validation rows.
    const flags = ['--data', writeData('mixed', 4096, 6, 3), '--epochs', '10', '--batch-size', '2048', '--val-split', '0.2'];
    const expected = await oneWorkerHash('mixed', flags);
    const cluster = await startCoordinator('mixed', flags, 8);
    const [first, second] = await Promise.all([startRelay(cluster.url), startRelay(cluster.url)]);
    // Three workers behind each relay (falling back to the coordinator itself), two on the coordinator.
    const behind = [first!, first!, first!, second!, second!, second!].map((relay) => startWorker([relay.url, cluster.url]));
    const direct = [startWorker([cluster.url]), startWorker([cluster.url])];
    const monitor = await openMonitor(`${cluster.url}/monitor`, BEARER);
    const seen = await monitor.waitFor((message) => message.type === 'step' && message.step >= 3, 'step 3', 120_000);
    const leftAt = (seen as StepEvent).step;
    // At once: the first relay leaves, and a worker behind the second one dies (its group recomputes its chunks).
    process.kill(first!.relay.pid, 'SIGTERM');
    process.kill(behind[3]!.pid, 'SIGKILL');
    expect((await first!.relay.exited(30_000)).code, first!.relay.stderr()).toBe(0);
    await cluster.coordinator.waitForLine(/relay \d+(?: \([^)]*\))? left: said goodbye \(SIGTERM\)/, 30_000);

    const { code } = await cluster.coordinator.exited(240_000);
    expect(code, cluster.coordinator.stderr().slice(-3000)).toBe(0);
    expect((await second!.relay.exited(30_000)).code).toBe(0);
    expect((await behind[3]!.exited(30_000)).signal).toBe('SIGKILL');
    expect(second!.relay.stderr()).toMatch(/^worker \d+(?: \([^)]*\))? left: disconnected$/m);
    for (const worker of [...behind.filter((_, i) => i !== 3), ...direct]) expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    expect(modelHash(cluster.out)).toBe(expected);
    const steps = stepEvents(cluster.metrics);
    // Capacities 3, 3, 1, 1 over 64 chunks: shares of 24, 24, 8, 8, each worker behind a relay 8.
    expect(steps.filter((event) => event.step <= leftAt).map((event) => event.workers)).toEqual(Array(leftAt + 1).fill(8));
    expect(steps.at(-1)?.workers).toBe(7);
    // The leaving relay's three workers went on with the coordinator itself.
    expect(cluster.coordinator.stderr().match(/^worker \d+(?: \([^)]*\))? joined from/gm)).toHaveLength(2 + 3);
  });

  it('refuses a worker with a wrong token at a relay, and a relay with a wrong token at the coordinator', { timeout: 120_000 }, async () => {
    const flags = ['--data', writeData('tokens', 256, 3, 5), '--epochs', '1', '--batch-size', '64'];
    const cluster = await startCoordinator('tokens', flags, 1);
    const { relay, url } = await startRelay(cluster.url);
    const intruder = startWorker([url], 'not-the-token');
    expect((await intruder.exited(30_000)).code).toBe(1);
    expect(intruder.stderr()).toMatch(/refused this worker: .*wrong or missing token \(DPT_AUTH\)/);
    expect(relay.stderr()).toMatch(/closing connection from 127\.0\.0\.1:\d+: message 'hello', field 'token': wrong or missing token/);

    const impostor = startCli(['relay', '--connect', cluster.url, '--host', '127.0.0.1', '--port', '0', '--token', 'not-the-token']);
    expect((await impostor.exited(30_000)).code).toBe(1);
    expect(impostor.stderr()).toMatch(/the coordinator refused this relay: .*wrong or missing token \(DPT_AUTH\)/);
    expect(impostor.stderr()).not.toMatch(/relay listening/);
    expect(cluster.coordinator.stderr()).toMatch(/closing connection from 127\.0\.0\.1:\d+: message 'hello', field 'token': wrong or missing token/);

    // Reachable from other hosts, a relay needs the token: refused before it connects.
    const open = await runCli(['relay', '--connect', cluster.url, '--host', '0.0.0.0', '--port', '0'], {}, 30_000);
    expect(open.code).toBe(2);
    expect(open.stderr).toMatch(/^dpt: --host 0\.0\.0\.0: a relay reachable from other hosts needs --token/m);
    // A worker's list of URLs is checked entry by entry.
    for (const list of ['ws://127.0.0.1:1,ftp://host/', 'ws://127.0.0.1:1,,ws://127.0.0.1:2']) {
      const bad = await runCli(['worker', '--connect', list], {}, 30_000);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/^dpt: option '--connect <url>' argument '.*' is invalid\. expected .*URL.* \(DPT_CONFIG\)$/m);
    }
  });
});
