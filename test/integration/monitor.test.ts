// The loss stream against real runs: WebSocket and SSE monitors and `dpt monitor --json` get
// the history, then live events, and exactly the step events of the --metrics file; every
// monitoring door refuses a missing or wrong token; at most --max-monitors are served (HTTP 503
// past it); `dpt monitor` survives a coordinator restart and exits with the run's outcome. Runs
// are held mid-way by a gated worker (the run provably cannot end meanwhile), never by timing.

import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { EvalEvent, MonitorMessage, StepEvent } from '../../shared/events.js';
import { CLI, type CliProcess, killAll, startCli, temporaryDirectory } from '../helpers/cli.js';
import { startGatedWorker } from '../helpers/gated-worker.js';
import { openMonitor, parsePrometheus, readEventStream, sampleValue, upgradeStatus } from '../helpers/monitor.js';
import { generateData } from '../helpers/reference.js';

const directory = temporaryDirectory();
const dataPath = join(directory.path, 'data.csv');
writeFileSync(dataPath, generateData(300, 4, 11).csv);
const TOKEN = 'worker-secret';
const MONITOR_TOKEN = 'monitor-secret';
const BEARER = { authorization: `Bearer ${TOKEN}` };
/** 300 rows, 20% held out: 240 training rows, batches of 10, 20 epochs. */
const TOTAL_STEPS = 24 * 20;

afterAll(() => {
  killAll();
  directory.remove();
});

function startCoordinator(extra: string[]): CliProcess {
  return startCli([
    'coordinator',
    '--data',
    dataPath,
    '--epochs',
    '20',
    '--batch-size',
    '10',
    '--val-split',
    '0.2',
    '--host',
    '127.0.0.1',
    '--workers',
    '1',
    '--token',
    TOKEN,
    ...extra,
  ]);
}

async function listeningPort(coordinator: CliProcess): Promise<number> {
  const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
  return Number(port);
}

/** Polls GET /metrics until `name` has the value `wanted` (bounded). */
async function waitForMetric(port: number, name: string, wanted: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = Number.NaN;
  while (Date.now() < deadline) {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: BEARER });
    last = sampleValue(parsePrometheus(await response.text()).samples, name);
    if (last === wanted) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`${name} is ${last}, not ${wanted}, after ${timeoutMs} ms`);
}

function readJsonl(path: string): { steps: StepEvent[]; evals: EvalEvent[] } {
  const events = readFileSync(path, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as StepEvent | EvalEvent); // the coordinator's own JSON
  return { steps: events.filter((e): e is StepEvent => e.type === 'step'), evals: events.filter((e): e is EvalEvent => e.type === 'eval') };
}

/** Runs `dpt monitor` on a pseudo-terminal (util-linux `script`), 120 columns wide; resolves with its exit code and screen output. */
function monitorOnTerminal(url: string): { pid: number; done: Promise<{ code: number | null; output: string }> } {
  const command = `stty cols 120 rows 40; exec ${process.execPath} ${CLI} monitor ${url} --token ${TOKEN}`;
  const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const done = new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dpt monitor on a terminal still running after 60 s:\n${output}`)), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  if (child.pid === undefined) throw new Error('could not start script(1)');
  return { pid: child.pid, done };
}

/** A worker that holds a step is neither dropped nor backed up by another: the run waits for it. */
const HELD_RUN = ['--backup-factor', '0', '--step-timeout', '600000'];

const stepsOf = (messages: readonly MonitorMessage[]): StepEvent[] => messages.filter((m): m is StepEvent => m.type === 'step');
const evalsOf = (messages: readonly MonitorMessage[]): EvalEvent[] => messages.filter((m): m is EvalEvent => m.type === 'eval');

describe('the loss stream', () => {
  it('gives WebSocket, SSE and dpt monitor --json the history, then live events, equal to the --metrics file', async () => {
    const metricsPath = join(directory.path, 'stream.jsonl');
    const coordinator = startCoordinator(['--port', '0', '--metrics', metricsPath, ...HELD_RUN]);
    const port = await listeningPort(coordinator);
    const early = await openMonitor(`ws://127.0.0.1:${port}/monitor`, BEARER);
    const sse = readEventStream(`http://127.0.0.1:${port}/events`, BEARER);
    const cli = startCli(['monitor', `http://127.0.0.1:${port}`, '--json'], { DPT_MONITOR_TOKEN: TOKEN });
    const terminal = monitorOnTerminal(`http://127.0.0.1:${port}`);
    await cli.waitForLine(/"type":"history"/);
    await waitForMetric(port, 'dpt_monitors_connected', 4); // every monitor is in before the first step
    // The only worker holds step 100: the run stands still there (no backup computation) until released.
    const worker = startGatedWorker(`ws://127.0.0.1:${port}`, TOKEN, 100);

    // A monitor that arrives mid-run (token in the query, as a browser sends it).
    expect(await worker.held).toBe(100);
    const late = await openMonitor(`ws://127.0.0.1:${port}/monitor?token=${TOKEN}`);
    await late.waitFor((m) => m.type === 'history', 'history notice');
    worker.release();

    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);
    await Promise.all([early.closed(), late.closed()]);
    expect((await cli.exited()).code, cli.stderr()).toBe(0);
    const screen = await terminal.done;
    expect(screen.code, screen.output).toBe(0);
    // The live view's last frame: the finished run, its loss and the worker.
    expect(screen.output).toMatch(/run finished/);
    expect(screen.output).toMatch(/step 480\/480 \(100\.0%\)\s+epoch 20\/20/);
    expect(screen.output).toMatch(/loss \d\.\d{4}\s+smoothed \d\.\d{4}/);
    expect(screen.output).toMatch(/127\.0\.0\.1:\d+\s+[\d,]+\s+100%/);
    const stream = await sse;
    const file = readJsonl(metricsPath);
    expect(file.steps).toHaveLength(TOTAL_STEPS);

    // Connected before the run: an empty history, then every event, in order.
    const cliMessages = cli
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as MonitorMessage); // the coordinator's own JSON
    for (const [name, messages] of [
      ['ws', early.messages],
      ['sse', stream.messages],
      ['dpt monitor --json', cliMessages],
    ] as const) {
      expect(messages[0], name).toMatchObject({ type: 'history', events: 0 });
      expect(stepsOf(messages), name).toEqual(file.steps);
      expect(evalsOf(messages), name).toEqual(file.evals);
      expect(
        messages.filter((m) => m.type === 'worker' && m.event === 'joined'),
        name,
      ).toHaveLength(1);
      expect(
        messages.find((m) => m.type === 'run' && m.event === 'start'),
        name,
      ).toMatchObject({ totalSteps: TOTAL_STEPS, firstStep: 0, epochs: 20 });
      expect(messages.at(-1), name).toMatchObject({ type: 'run', event: 'end', outcome: 'finished', steps: TOTAL_STEPS, reason: null });
      expect(
        messages.some((m) => m.type === 'dropped'),
        name,
      ).toBe(false);
      // The final per-worker figures: the one worker computed every row of every step.
      const workers = messages.filter((m) => m.type === 'workers').at(-1);
      expect(workers?.type === 'workers' ? workers.workers.map((w) => w.rows) : null, name).toEqual([file.steps.reduce((sum, e) => sum + e.rows, 0)]);
    }
    expect(stream.status).toBe(200);

    // Mid-run: the history notice counts the replayed events, which hold the join, the start and
    // the steps so far; live events follow without a gap.
    const [notice, ...rest] = late.messages;
    expect(notice).toMatchObject({ type: 'history' });
    const replayed = notice?.type === 'history' ? rest.slice(0, notice.events) : [];
    expect(replayed.map((m) => m.type)).toEqual(expect.arrayContaining(['worker', 'run', 'step']));
    const lateSteps = stepsOf(late.messages);
    for (const event of lateSteps) expect(event).toEqual(file.steps[event.step]);
    const numbers = lateSteps.map((event) => event.step);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    // The run stood at step 100 when it joined: fewer than 4096 steps, so the history holds every
    // step before it, and the live events every step from it: all of them exactly once, in order.
    const live = stepsOf(rest.slice(replayed.length));
    expect(numbers).toEqual(Array.from({ length: TOTAL_STEPS }, (_, i) => i));
    expect(live.map((event) => event.step)).toEqual(expect.arrayContaining(Array.from({ length: TOTAL_STEPS - 100 }, (_, i) => 100 + i)));
    expect(late.messages.at(-1)).toMatchObject({ type: 'run', event: 'end', outcome: 'finished' });
  });

  it('refuses a missing or wrong token at every monitoring door; the monitor token cannot join as a worker', async () => {
    const coordinator = startCoordinator(['--port', '0', '--monitor-token', MONITOR_TOKEN]);
    const port = await listeningPort(coordinator);
    const base = `127.0.0.1:${port}`;
    expect(await upgradeStatus(`ws://${base}/monitor`)).toBe(401);
    expect(await upgradeStatus(`ws://${base}/monitor`, { authorization: 'Bearer wrong' })).toBe(401);
    expect(await upgradeStatus(`ws://${base}/monitor?token=${MONITOR_TOKEN}`)).toBe(101);
    expect(await upgradeStatus(`ws://${base}/monitor`, BEARER)).toBe(101);
    const status = async (path: string, headers: Record<string, string> = {}): Promise<number> => {
      const response = await fetch(`http://${base}${path}`, { headers });
      await response.body?.cancel();
      return response.status;
    };
    for (const path of ['/', '/events', '/metrics']) {
      expect(await status(path), path).toBe(401);
      expect(await status(`${path}?token=wrong`), path).toBe(401);
    }
    expect(await status(`/?token=${MONITOR_TOKEN}`)).toBe(200);
    expect(await status('/metrics', { authorization: `Bearer ${MONITOR_TOKEN}` })).toBe(200);
    // Open: health checks and the dashboard's static files (no data in them).
    expect(await status('/healthz')).toBe(200);
    expect(await status('/uplot.js')).toBe(200);

    const refusedMonitor = startCli(['monitor', `http://${base}`, '--token', 'wrong', '--json']);
    expect((await refusedMonitor.exited(20_000)).code).toBe(1);
    expect(refusedMonitor.stderr()).toMatch(/refused the monitor token \(HTTP 401\) \(DPT_AUTH\)/);
    const worker = startCli(['worker', '--connect', `ws://${base}`, '--token', MONITOR_TOKEN]);
    expect((await worker.exited(20_000)).code).toBe(1);
    expect(worker.stderr()).toMatch(/wrong or missing token/);
    coordinator.child.kill('SIGKILL');
  });
});

describe('monitor limits', () => {
  it('serves 64 monitors by default, answers the 65th with 503, and streams the first 64 to the end with their full history', async () => {
    const metricsPath = join(directory.path, 'limits.jsonl');
    const coordinator = startCoordinator(['--port', '0', '--metrics', metricsPath, ...HELD_RUN]);
    const port = await listeningPort(coordinator);
    const base = `127.0.0.1:${port}`;
    const worker = startGatedWorker(`ws://${base}`, TOKEN, 240);
    expect(await worker.held).toBe(240);

    // 64 late joiners (half WebSocket, half SSE) while the run stands at step 240.
    const sockets = await Promise.all(Array.from({ length: 32 }, () => openMonitor(`ws://${base}/monitor`, BEARER)));
    const streams = Array.from({ length: 32 }, () => readEventStream(`http://${base}/events`, BEARER));
    await waitForMetric(port, 'dpt_monitors_connected', 64);
    expect(await upgradeStatus(`ws://${base}/monitor`, BEARER)).toBe(503);
    const refused = await fetch(`http://${base}/events`, { headers: BEARER });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.text()).toMatch(/at most 64 monitors \(--max-monitors\)/);
    const { samples } = parsePrometheus(await (await fetch(`http://${base}/metrics`, { headers: BEARER })).text());
    expect(sampleValue(samples, 'dpt_monitors_refused_total')).toBe(2);
    expect(sampleValue(samples, 'dpt_monitors_connected')).toBe(64);
    // Each monitor's queue is bounded: the high-water mark (256 KiB) plus at most one batch.
    expect(sampleValue(samples, 'dpt_monitor_queued_bytes_max')).toBeLessThanOrEqual(256 * 1024 + 64 * 1024);

    worker.release();
    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);
    const file = readJsonl(metricsPath);
    expect(file.steps).toHaveLength(TOTAL_STEPS);
    await Promise.all(sockets.map((socket) => socket.closed()));
    const everyMonitor = [...sockets.map((socket) => socket.messages), ...(await Promise.all(streams)).map((stream) => stream.messages)];
    expect(everyMonitor).toHaveLength(64);
    for (const messages of everyMonitor) {
      // History (every step before 240) then live events (every step from it): each step once, as in the file.
      expect(messages[0]).toMatchObject({ type: 'history' });
      expect(stepsOf(messages)).toEqual(file.steps);
      expect(evalsOf(messages)).toEqual(file.evals);
      expect(messages.some((m) => m.type === 'dropped')).toBe(false);
      expect(messages.at(-1)).toMatchObject({ type: 'run', event: 'end', outcome: 'finished' });
    }
  });
});

describe('dpt monitor', () => {
  it('reconnects when the coordinator restarts behind the same address, and exits 0 when the run ends', async () => {
    // The monitor follows one address, a TCP relay owned by this test; each coordinator gets a port
    // of its own (port 0), so no test ever restarts a server on a port it just released.
    const relay = await startRelay();
    try {
      const first = startCoordinator(['--port', '0']);
      relay.target = await listeningPort(first);
      const monitor = startCli(['monitor', `ws://127.0.0.1:${relay.port}`, '--token', TOKEN, '--json']);
      await monitor.waitForLine(/"type":"history"/);
      first.child.kill('SIGKILL');
      await first.exited();

      const metricsPath = join(directory.path, 'restart.jsonl');
      const second = startCoordinator(['--port', '0', '--metrics', metricsPath]);
      relay.target = await listeningPort(second);
      startCli(['worker', '--connect', `ws://127.0.0.1:${relay.target}`, '--token', TOKEN, '--quiet']);
      expect((await second.exited()).code, second.stderr()).toBe(0);
      expect((await monitor.exited(30_000)).code, monitor.stderr()).toBe(0);

      const messages = monitor
        .stdout()
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as MonitorMessage); // the coordinator's own JSON
      const sessions = messages.flatMap((m, i) => (m.type === 'history' ? [i] : []));
      expect(sessions.length).toBeGreaterThanOrEqual(2);
      expect(relay.connections).toBeGreaterThanOrEqual(2);
      const secondSession = messages.slice(sessions.at(-1));
      expect(stepsOf(secondSession)).toEqual(readJsonl(metricsPath).steps);
      expect(messages.at(-1)).toMatchObject({ type: 'run', event: 'end', outcome: 'finished' });
    } finally {
      await relay.close();
    }
  });

  it('exits 1 and says why when the run it watches fails', async () => {
    // No worker comes: the coordinator gives up after the join timeout.
    const coordinator = startCoordinator(['--port', '0', '--join-timeout', '5000']);
    const port = await listeningPort(coordinator);
    const monitor = startCli(['monitor', `http://127.0.0.1:${port}`, '--token', TOKEN, '--json']);
    await monitor.waitForLine(/"type":"history"/);
    expect((await coordinator.exited()).code).toBe(1);
    expect((await monitor.exited(20_000)).code).toBe(1);
    expect(monitor.stderr()).toMatch(/the run failed: .*workers/);
    expect(JSON.parse(monitor.stdout().trim().split('\n').at(-1) ?? '')).toMatchObject({ type: 'run', event: 'end', outcome: 'failed', steps: 0 });
  });
});

/** A TCP relay on 127.0.0.1 (port 0) to whichever port `target` names when a connection arrives. */
async function startRelay(): Promise<{ port: number; target: number; connections: number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const relay = { port: 0, target: 0, connections: 0, close: (): Promise<void> => Promise.resolve() };
  const server: Server = createServer((client) => {
    relay.connections++;
    const upstream = tcpConnect(relay.target, '127.0.0.1');
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => undefined); // the other side is closed with it
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.port = (server.address() as { port: number }).port;
  relay.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return relay;
}
