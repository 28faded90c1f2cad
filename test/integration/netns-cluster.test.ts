// A multi-host cluster without Docker: the coordinator and three workers each run in their own
// network namespace, cabled to one bridge, started with exactly the command and environment
// docker-compose.yml gives their services. One worker's cable is cut mid-training and healed:
// the others take over its chunks, the coordinator drops it (missed heartbeat or step deadline),
// the worker notices the dead link by itself, reconnects and rejoins, and training completes with
// every step and a valid model. Needs root, iproute2 and the right to create namespaces (CI
// runs as root): without them it is skipped, and the skipped test's name says why.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeServiceProcess, type LabProcess, NetnsLab, netnsUnavailable, type ServiceMapping } from '../helpers/netns.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const COMPOSE = join(REPO, 'docker-compose.yml');
const DOCKERFILE = join(REPO, 'Dockerfile');
const COORDINATOR_ADDRESS = '10.77.0.1';
const WORKERS = [
  { host: 'w1', address: '10.77.0.11' },
  { host: 'w2', address: '10.77.0.12' },
  { host: 'w3', address: '10.77.0.13' },
] as const;
const CUT = WORKERS[1];
/** Sized so that the run lasts ~10-20 s on a 2-core machine (29 steps per epoch at batch 16). */
const EPOCHS = 1500;
/** The cable is cut when the coordinator reports this epoch done. */
const CUT_AT_EPOCH = 150;
const STEP_TIMEOUT_MS = 1000;
/** Both sides ping this often; a peer silent for a beat is dropped (coordinator) or left (worker). */
const HEARTBEAT_MS = 2000;
/** Compose variables, as a user would export them before `docker compose up`. */
const VARIABLES = {
  DPT_EPOCHS: String(EPOCHS),
  DPT_BATCH_SIZE: '16',
  DPT_WORKERS: String(WORKERS.length),
  DPT_STEP_TIMEOUT: String(STEP_TIMEOUT_MS),
  DPT_HEARTBEAT: String(HEARTBEAT_MS),
  DPT_CONNECT_TIMEOUT: '60000',
};

const scratch = mkdtempSync(join(tmpdir(), 'dpt-netns-'));
const outputDir = join(scratch, 'output');
const tokenFile = join(scratch, 'dpt_token');
const token = `netns-${process.pid}-${Date.now().toString(36)}`;
let lab: NetnsLab | null = null;
/** Why this machine cannot run the test (then it is skipped), or null. */
const unavailable = netnsUnavailable();

function requireLab(): NetnsLab {
  if (lab === null) throw new Error('the lab was not set up (see the beforeAll error)');
  return lab;
}

/** Asks the coordinator's /status from inside its namespace (never from the host's). */
async function status(): Promise<{ state: string; step: number; totalSteps: number; workers: { id: number; address: string }[] }> {
  const script = `fetch('http://127.0.0.1:8787/status', { headers: { authorization: 'Bearer ' + process.env.T }, signal: AbortSignal.timeout(3000) })
    .then((r) => r.text()).then((t) => process.stdout.write(t), (e) => { console.error(String(e)); process.exit(1); });`;
  const result = await requireLab().run('co', [process.execPath, '-e', script], { T: token }, 10_000);
  if (result.code !== 0) throw new Error(`GET /status failed with exit code ${result.code}`);
  return JSON.parse(result.stdout) as Awaited<ReturnType<typeof status>>;
}

beforeAll(() => {
  if (unavailable !== null) return;
  mkdirSync(outputDir);
  writeFileSync(tokenFile, `${token}\n`);
  lab = new NetnsLab('dptn');
  lab.addHost('co', COORDINATOR_ADDRESS);
  for (const worker of WORKERS) lab.addHost(worker.host, worker.address);
});

afterAll(() => {
  lab?.destroy();
  rmSync(scratch, { recursive: true, force: true });
});

describe.skipIf(unavailable !== null)(
  `a cluster of network namespaces started from docker-compose.yml${unavailable === null ? '' : ` (skipped: ${unavailable})`}`,
  () => {
    it('finishes training after a worker is cut off and healed, and the worker rejoins', { timeout: 180_000 }, async () => {
      const net = requireLab();
      const mapping: ServiceMapping = {
        variables: VARIABLES,
        serviceAddresses: { coordinator: COORDINATOR_ADDRESS },
        volumes: { output: outputDir },
        secrets: { dpt_token: tokenFile },
      };
      const coordinatorService = composeServiceProcess(COMPOSE, DOCKERFILE, 'coordinator', mapping);
      const workerService = composeServiceProcess(COMPOSE, DOCKERFILE, 'worker', mapping);
      // The translation is what compose would run: the image's entrypoint, the service's command.
      expect(coordinatorService.argv).toEqual([process.execPath, join(REPO, 'dist', 'cli', 'main.js'), 'coordinator']);
      expect(workerService.argv).toEqual([process.execPath, join(REPO, 'dist', 'cli', 'main.js'), 'worker']);
      expect(workerService.env.DPT_CONNECT).toBe(`ws://${COORDINATOR_ADDRESS}:8787`);
      expect(coordinatorService.env.DPT_DATA).toBe(join(REPO, 'data', 'breast_cancer.csv'));
      expect(coordinatorService.env.DPT_OUT).toBe(join(outputDir, 'model.json'));

      const started = performance.now();
      const coordinator = net.start('co', coordinatorService.argv, coordinatorService.env);
      await coordinator.waitForLine(/^listening on ws:\/\//, 20_000);
      // depends_on: service_healthy: the healthcheck command, run where compose runs it.
      expect(coordinatorService.healthcheck).not.toBeNull();
      const health = await net.run('co', coordinatorService.healthcheck ?? [], coordinatorService.env, 10_000);
      expect(health.code, 'the compose healthcheck fails against the coordinator').toBe(0);

      const workers = new Map<string, LabProcess>();
      for (const worker of WORKERS) workers.set(worker.host, net.start(worker.host, workerService.argv, workerService.env));
      const workerIds = new Map<string, string>();
      for (const worker of WORKERS) {
        const joined = await coordinator.waitForLine(new RegExp(`^worker (\\d+)(?: \\([^)]*\\))? joined from ${escapeRegExp(worker.address)}:`), 30_000);
        workerIds.set(worker.host, joined[1] ?? '');
      }

      // Cut one worker's cable mid-training. Its pending chunks go to the others (as backup tasks
      // or, after --step-timeout, as recomputation), and the coordinator drops it after a missed
      // step deadline or heartbeat, whichever comes first.
      await coordinator.waitForLine(new RegExp(`^epoch ${CUT_AT_EPOCH}/${EPOCHS} `), 60_000);
      const cutId = workerIds.get(CUT.host) ?? '';
      net.setLink(CUT.host, false);
      const cutAt = performance.now();
      const left = await coordinator.waitForLine(new RegExp(`^worker ${cutId}(?: \\([^)]*\\))? left: (.*)$`), STEP_TIMEOUT_MS + HEARTBEAT_MS + 15_000);
      const droppedAfterMs = performance.now() - cutAt;
      // The cut may land in a step or in a data pass (evaluation after each epoch).
      expect(left[1]).toMatch(
        /^no part for (step \d+|(feature statistics|evaluation) over the [\d,]+ (training|validation) rows) within \d+ ms|^no heartbeat for \d+ ms/,
      );

      // Heal it: the worker notices that its old connection is gone and connects afresh.
      net.setLink(CUT.host, true);
      const healedAt = performance.now();
      let rejoined: RegExpMatchArray;
      try {
        rejoined = await coordinator.waitForLine(new RegExp(`^worker (?!${cutId} )(\\d+)(?: \\([^)]*\\))? joined from ${escapeRegExp(CUT.address)}:`), 45_000);
      } catch (error) {
        const cut = workers.get(CUT.host);
        throw new Error(
          `the healed worker did not rejoin within 45 s; it is ${cut?.isRunning() === true ? 'still running' : 'gone'}, its stderr:\n${cut?.stderr() ?? ''}`,
          { cause: error },
        );
      }
      const rejoinedAfterMs = performance.now() - healedAt;
      const view = await status();
      expect(view.state).toBe('training');
      expect(view.workers.map((w) => w.address.replace(/:\d+$/, '')).sort()).toEqual(WORKERS.map((w) => w.address));

      const end = await coordinator.exited(120_000);
      expect(end, coordinator.stderr()).toEqual({ code: 0, signal: null });
      for (const [host, worker] of workers) {
        expect(await worker.exited(20_000), `worker ${host}: ${worker.stderr()}`).toEqual({ code: 0, signal: null });
      }
      const noticed = workers
        .get(CUT.host)
        ?.stderr()
        .match(/^.*(lost the coordinator|no heartbeat from the coordinator).*$/m);
      expect(noticed, 'the cut worker never logged that it lost the coordinator').not.toBeNull();

      // The model and the loss stream, on the stand-in for the output volume.
      const model = JSON.parse(readFileSync(join(outputDir, 'model.json'), 'utf8')) as { format: string; weights: number[]; bias: number };
      expect(model.format).toBe('dpt-model');
      expect(model.weights).toHaveLength(30);
      expect([...model.weights, model.bias].every(Number.isFinite)).toBe(true);
      const events = readFileSync(join(outputDir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { type: string; step?: number; workers?: number });
      const steps = events.filter((e) => e.type === 'step');
      expect(steps).toHaveLength(view.totalSteps);
      expect(steps.every((e, i) => e.step === i)).toBe(true);
      // Steps ran on two workers while the third was cut off, and on three again after it rejoined.
      expect(steps.some((e) => e.workers === 2)).toBe(true);
      expect(Math.max(...steps.slice(-100).map((e) => e.workers ?? 0))).toBe(3);
      console.info(
        `netns cluster: ${view.totalSteps} steps in ${((performance.now() - started) / 1000).toFixed(1)} s; ` +
          `worker ${cutId} dropped ${Math.round(droppedAfterMs)} ms after the cut (${left[1]}); ` +
          `rejoined as worker ${rejoined[1]} ${Math.round(rejoinedAfterMs)} ms after the heal (it logged: ${noticed?.[0]})`,
      );
    });
  },
);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
