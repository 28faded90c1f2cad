// Sparse runs behind relays (issue #13 on the clusters of issue #11): a relay keeps a replica of
// the sparse parameters fed by the coordinator's params messages and serves its group deltas or
// the full vector per connection; its workers' sparse parts are reduced along the tree before they
// go up. Real processes: one relay with 1 and with 3 workers, two relays in a chain, two relays
// side by side with a worker SIGKILLed behind one of them mid-run, and a relay SIGKILLed mid-run
// (its worker joins the other relay) all give the model file, the parameters and the loss stream
// of one worker without relays, bit for bit.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CliProcess, killAll, startCli, temporaryDirectory } from '../helpers/cli.js';
import { type ClusterRun, modelFileDigest, trainOnCluster } from '../helpers/cluster-runs.js';
import { startHonestWorker } from '../helpers/fake-worker.js';
import { libsvmText } from '../helpers/libsvm-text.js';
import { modelHash, stepLosses } from '../helpers/model-hash.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

const TOKEN = 'sparse-relay-token';
/** The largest index a row may use: D is at most this (the largest one present). */
const MAX_INDEX = 3000;
// 400 rows, 40 held out (the relays also split the evaluation passes): 360 training rows, 8 batches of 45 per epoch.
const EPOCHS = 3;
const STEPS = EPOCHS * 8;
let svm = '';
const SGD_L2 = ['--optimizer', 'sgd', '--l2', '0.02'];
const flags = (optimizer: readonly string[] = SGD_L2): string[] => [
  '--data',
  svm,
  '--epochs',
  String(EPOCHS),
  '--batch-size',
  '45',
  '--chunks',
  '8',
  '--lr',
  '0.5',
  '--val-split',
  '0.1',
  '--seed',
  '7',
  ...optimizer,
];
/** Patience for a loaded machine; a held step stays held (no backups, no step deadline). */
const PATIENT = ['--heartbeat', '30000', '--backup-factor', '0', '--step-timeout', '600000'];

beforeAll(() => {
  svm = join(directory.path, 'rows.svm');
  writeFileSync(svm, libsvmText({ rows: 400, maxIndex: MAX_INDEX, seed: 41 }));
});

interface Cluster {
  readonly coordinator: CliProcess;
  readonly url: string;
  readonly out: string;
  readonly metrics: string;
}

async function startCoordinator(name: string, workers: number, optimizer: readonly string[] = SGD_L2): Promise<Cluster> {
  const out = join(directory.path, `${name}.json`);
  const metrics = join(directory.path, `${name}.jsonl`);
  const coordinator = startCli([
    'coordinator',
    ...flags(optimizer),
    ...PATIENT,
    '--join-timeout',
    '300000',
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
  const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/, 120_000);
  return { coordinator, url: `ws://127.0.0.1:${port}`, out, metrics };
}

/** A relay of the coordinator (or relay) at `upstream`; resolves with it and its workers' URL once it listens. */
async function startRelay(upstream: string): Promise<{ relay: CliProcess; url: string }> {
  const relay = startCli(['relay', '--connect', upstream, '--host', '127.0.0.1', '--port', '0', '--token', TOKEN, ...PATIENT, '--connect-timeout', '300000']);
  const [, port] = await relay.waitForLine(/^relay listening on ws:\/\/127\.0\.0\.1:(\d+)$/m, 120_000);
  return { relay, url: `ws://127.0.0.1:${port}` };
}

function startWorker(url: string): CliProcess {
  return startCli(['worker', '--connect', url, '--token', TOKEN, '--heartbeat', '30000', '--connect-timeout', '300000']);
}

/** Waits for the run to end (every process exiting 0), then what a bits proof compares, with the coordinator's traffic lines. */
async function finished(cluster: Cluster, others: readonly CliProcess[]): Promise<ClusterRun & { stepBytes: number[] }> {
  const { code } = await cluster.coordinator.exited(300_000);
  expect(code, cluster.coordinator.stderr().slice(-3000)).toBe(0);
  for (const process of others) expect((await process.exited(60_000)).code, process.stderr().slice(-2000)).toBe(0);
  const contributors = stepEvents(cluster.metrics).map((event) => event.workers);
  const stepBytes = [...cluster.coordinator.stderr().matchAll(/received \d+ bytes of step messages \((\d+) bytes per step\)/g)].map((match) =>
    Number(match[1]),
  );
  return {
    out: cluster.out,
    metrics: cluster.metrics,
    digest: modelFileDigest(cluster.out),
    params: modelHash(cluster.out),
    losses: stepLosses(cluster.metrics),
    contributors,
    stepBytes,
  };
}

function stepEvents(metrics: string): { step: number; workers: number }[] {
  return readFileSync(metrics, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; step: number; workers: number })
    .filter((event) => event.type === 'step');
}

/** Coordinator ← one relay ← `workers` workers. */
async function behindOneRelay(name: string, workers: number, optimizer: readonly string[] = SGD_L2) {
  const cluster = await startCoordinator(name, workers, optimizer);
  const { relay, url } = await startRelay(cluster.url);
  const group = Array.from({ length: workers }, () => startWorker(url));
  return finished(cluster, [relay, ...group]);
}

/** Coordinator ← relay ← relay ← 3 workers: the inner relay's replica is fed by the outer one's. */
async function behindTwoRelaysInAChain(name: string) {
  const cluster = await startCoordinator(name, 3);
  const outer = await startRelay(cluster.url);
  const inner = await startRelay(outer.url);
  const group = Array.from({ length: 3 }, () => startWorker(inner.url));
  return finished(cluster, [outer.relay, inner.relay, ...group]);
}

describe('sparse runs behind relays give the bits of one worker without relays', () => {
  it('one relay with 1 and with 3 workers, two relays in a chain with 3 workers', { timeout: 600_000 }, async () => {
    const [direct, oneOne, oneThree, chain] = await Promise.all([
      trainOnCluster(directory.path, 'direct-w1', flags(), 1),
      behindOneRelay('relay-w1', 1),
      behindOneRelay('relay-w3', 3),
      behindTwoRelaysInAChain('chain-w3'),
    ]);
    expect(direct.losses).toHaveLength(STEPS);
    // Every worker behind the relays computed a share of every step.
    expect(oneThree.contributors).toEqual(Array(STEPS).fill(3));
    expect(chain.contributors).toEqual(Array(STEPS).fill(3));
    for (const [cluster, run] of [
      ['one relay, 1 worker', oneOne],
      ['one relay, 3 workers', oneThree],
      ['two relays in a chain, 3 workers', chain],
    ] as const) {
      expect(run.digest, `${cluster}: model file`).toBe(direct.digest);
      expect(run.params, `${cluster}: parameters`).toBe(direct.params);
      expect(run.losses, `${cluster}: loss stream`).toEqual(direct.losses);
      // The relay gets steps and params deltas, never a dense θ (8·D bytes, D ≤ MAX_INDEX).
      expect(run.stepBytes).toHaveLength(1);
      expect(run.stepBytes[0]!, `${cluster}: bytes per step to the relay`).toBeLessThan(8 * MAX_INDEX);
    }
  });

  it('ftrl and sgd with an exact --l1 behind one relay with 3 workers: the bits of one worker without relays', { timeout: 600_000 }, async () => {
    // --l1's lazy penalties are paid before the workers read a coordinate, and an evaluation pass
    // gets a version with every coordinate's current value: the relay's replica must serve those.
    for (const [name, optimizer] of [
      ['ftrl', ['--optimizer', 'ftrl', '--l1', '0.005', '--l2', '0.01']],
      ['sgd-l1', ['--optimizer', 'sgd', '--l1', '0.002', '--l2', '0.01']],
    ] as const) {
      const [direct, relayed] = await Promise.all([
        trainOnCluster(directory.path, `direct-${name}`, flags(optimizer), 1),
        behindOneRelay(`relay-${name}`, 3, optimizer),
      ]);
      expect(direct.losses).toHaveLength(STEPS);
      expect(relayed.contributors).toEqual(Array(STEPS).fill(3));
      expect(relayed.digest, `${name}: model file`).toBe(direct.digest);
      expect(relayed.params, `${name}: parameters`).toBe(direct.params);
      expect(relayed.losses, `${name}: loss stream`).toEqual(direct.losses);
    }
  });

  it('two relays side by side, a worker SIGKILLed behind one of them mid-run: the same bits', { timeout: 600_000 }, async () => {
    const direct = await trainOnCluster(directory.path, 'direct-again-w1', flags(), 1);
    const cluster = await startCoordinator('killed-behind-relay', 3);
    const [first, second] = await Promise.all([startRelay(cluster.url), startRelay(cluster.url)]);
    // Behind the first relay an in-test worker that can hold a step, and the victim; behind the second, one worker.
    const gate = startHonestWorker(first!.url, TOKEN);
    const victim = startWorker(first!.url);
    const other = startWorker(second!.url);
    const exited = cluster.coordinator.exited(300_000);
    const killedAt = await Promise.race([
      gate.holdAt(9),
      exited.then((): never => {
        throw new Error(`the run ended before step 9\n${cluster.coordinator.stderr()}`);
      }),
    ]);
    process.kill(victim.pid, 'SIGKILL');
    expect((await victim.exited(30_000)).signal).toBe('SIGKILL');
    // The relay reports it gone before the held step goes on: its group recomputes what it owed.
    await first!.relay.waitForLine(/^worker \d+(?: \([^)]*\))? left: disconnected/m, 60_000);
    gate.release();
    const run = await finished(cluster, [first!.relay, second!.relay, other]);
    expect(killedAt).toBeGreaterThanOrEqual(9);
    expect(run.contributors.slice(0, 9)).toEqual(Array(9).fill(3));
    expect(Math.max(...run.contributors.slice(killedAt + 1))).toBe(2);
    expect(run.digest, 'model file').toBe(direct.digest);
    expect(run.params, 'parameters').toBe(direct.params);
    expect(run.losses, 'loss stream').toEqual(direct.losses);
  });

  it('a relay SIGKILLed mid-run: its worker joins the other relay, the same bits', {
    timeout: 600_000,
  }, async () => {
    const direct = await trainOnCluster(directory.path, 'direct-third-w1', flags(), 1);
    const cluster = await startCoordinator('relay-killed', 3);
    const [doomed, survivor] = await Promise.all([startRelay(cluster.url), startRelay(cluster.url)]);
    // The gate on the coordinator itself holds a step while the relay dies.
    const gate = startHonestWorker(cluster.url, TOKEN);
    const moving = startWorker(`${doomed!.url},${survivor!.url}`);
    const staying = startWorker(survivor!.url);
    const exited = cluster.coordinator.exited(300_000);
    const killedAt = await Promise.race([
      gate.holdAt(9),
      exited.then((): never => {
        throw new Error(`the run ended before step 9\n${cluster.coordinator.stderr()}`);
      }),
    ]);
    process.kill(doomed!.relay.pid, 'SIGKILL');
    expect((await doomed!.relay.exited(30_000)).signal).toBe('SIGKILL');
    await cluster.coordinator.waitForLine(/^relay \d+(?: \([^)]*\))? left: /m, 60_000);
    // Its worker reconnects to the other relay, which then stands for two.
    await cluster.coordinator.waitForLine(/^relay \d+(?: \([^)]*\))? now has 2 worker\(s\)$/m, 120_000);
    gate.release();
    const run = await finished(cluster, [survivor!.relay, moving, staying]);
    expect(killedAt).toBeGreaterThanOrEqual(9);
    expect(moving.stderr()).toMatch(/lost the coordinator at ws:\/\/127\.0\.0\.1:\d+ .*reconnecting to ws:\/\/127\.0\.0\.1:\d+/);
    expect(run.contributors.slice(0, 9)).toEqual(Array(9).fill(3));
    expect(run.contributors.at(-1)).toBe(3);
    expect(run.digest, 'model file').toBe(direct.digest);
    expect(run.params, 'parameters').toBe(direct.params);
    expect(run.losses, 'loss stream').toEqual(direct.losses);
  });
});
