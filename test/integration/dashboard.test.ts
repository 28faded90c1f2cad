// The dashboard in a real browser (Debian's headless Chromium driven by playwright-core) against
// a real run: the loss chart's point count grows while training, the worker table lists every
// worker that joined (a killed one marked as left, with its failure), the run ends as finished,
// and a screenshot is saved to test-artifacts/dashboard.png. The run is held mid-way by gated
// workers (it provably cannot end meanwhile), not by freezing processes that may have exited.
// Issue 14: a page opened mid-run shows the run at `load` (a screenshot then is not stuck on
// "connecting"), reports nothing skipped, samples its live tail at the history's stride, and
// every tile's text fits its tile at a large step count.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { loadDashboardAssets } from '../../coordinator/dashboard-assets.js';
import type { MonitorMessage, RunStartEvent, StepEvent } from '../../shared/events.js';
import { killAll, REPO, startCli } from '../helpers/cli.js';
import { type GatedWorker, startGatedWorker } from '../helpers/gated-worker.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'dashboard-token';
const ARTIFACTS = join(REPO, 'test-artifacts');
/** Flags for a browser with no network of its own beyond the page (no updates, sync or QUIC). */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let context: BrowserContext | null = null;
const profile = mkdtempSync(join(tmpdir(), 'dpt-chromium-'));

afterAll(async () => {
  await context?.close();
  killAll();
  rmSync(profile, { recursive: true, force: true });
});

/** The browser, started once for the file (a fresh profile directory each run). */
async function browser(): Promise<BrowserContext> {
  // playwright takes the profile as the persistent context's directory, not as --user-data-dir.
  context ??= await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 1000 },
    timeout: 30_000,
  });
  return context;
}

/**
 * The little of the DOM that the page-side functions below use (they run in the browser): this
 * project type-checks against Node's globals, and the declaration stays inside this module.
 */
declare const document: {
  body: { dataset: Record<string, string | undefined> };
  getElementById(id: string): { dataset: Record<string, string | undefined>; textContent: string | null } | null;
  querySelectorAll(selector: string): ArrayLike<{ scrollWidth: number; clientWidth: number; textContent: string | null }>;
};

/** Whether every tile's text fits its tile (page-side). */
const allTilesFit = (): boolean =>
  Array.from(document.querySelectorAll('.tile .value, .tile .sub')).every((element) => element.scrollWidth <= element.clientWidth);

/** The tiles' texts that do not fit their tile (page-side). */
const overflowingTiles = (): string[] =>
  Array.from(document.querySelectorAll('.tile .value, .tile .sub'))
    .filter((element) => element.scrollWidth > element.clientWidth)
    .map((element) => `${element.textContent} (${element.scrollWidth} > ${element.clientWidth} px)`);

const pointCount = async (page: Page): Promise<number> => Number(await page.getAttribute('#loss-chart', 'data-points'));

// CI installs Chromium (.ci/run); a developer machine without it skips this file.
describe.skipIf(!existsSync(CHROMIUM) && process.env.CI !== 'true')('the dashboard in a browser', () => {
  it('draws a growing loss chart and lists every worker during a real run', async () => {
    const coordinator = startCli([
      'coordinator',
      '--data',
      join(REPO, 'data', 'breast_cancer.csv'),
      '--epochs',
      '300',
      '--batch-size',
      '32',
      // 4 chunks a batch so that every worker takes part (the default for B = 32 is one chunk).
      '--chunks',
      '4',
      '--val-split',
      '0.2',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '2',
      '--token',
      TOKEN,
      '--step-timeout',
      '600000',
      // A held step is not given to another worker: the run stands still until it is released.
      '--backup-factor',
      '0',
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const page = await (await browser()).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Console errors too (a Content-Security-Policy violation is one), except the page's retries once the coordinator is gone.
    page.on('console', (message) => {
      if (message.type() === 'error' && !/WebSocket connection to .* failed/.test(message.text())) pageErrors.push(message.text());
    });
    await page.goto(`http://127.0.0.1:${port}/?token=${TOKEN}`);
    await page.waitForSelector('body[data-state="waiting"]', { timeout: 30_000 });

    // Two workers that hold step 1500 (of 4500): once one holds it, no step can commit.
    const url = `ws://127.0.0.1:${port}`;
    const first = startGatedWorker(url, TOKEN, 1500);
    const second = startGatedWorker(url, TOKEN, 1500);
    const holder = await Promise.race([first.held.then((): GatedWorker => first), second.held.then((): GatedWorker => second)]);
    const other = holder === first ? second : first;
    await page.waitForFunction(() => Number(document.getElementById('loss-chart')?.dataset.points) >= 1500, null, { timeout: 30_000 });
    const pointsWhilePaused = await pointCount(page);
    expect(pointsWhilePaused).toBe(1500);
    // Mid-run: one worker goes away (its chunks of step 1500 go to the other, which holds them
    // too), a third joins: a departure and a join while the run stands still.
    holder.socket.terminate();
    expect(await other.held).toBe(1500);
    startCli(['worker', '--connect', url, '--token', TOKEN, '--quiet']);
    await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr').length >= 3, null, { timeout: 30_000 });
    other.release();

    await page.waitForFunction((before) => Number(document.getElementById('loss-chart')?.dataset.points) > before, pointsWhilePaused, { timeout: 30_000 });
    await page.waitForSelector('body[data-state="finished"]', { timeout: 60_000 });
    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);

    const joined = [...coordinator.stderr().matchAll(/worker (\d+)(?: \([^)]*\))? joined/g)].map((match) => match[1]);
    const rows = await Promise.all(
      (await page.locator('#workers tbody tr').all()).map(async (row) => ({
        id: await row.getAttribute('data-worker-id'),
        className: await row.getAttribute('class'),
        kernel: await row.locator('td').nth(5).textContent(),
        rows: Number((await row.locator('td').nth(6).textContent())?.replaceAll(',', '')),
        failures: await row.locator('td').nth(7).textContent(),
      })),
    );
    // The dpt worker says which code runs its kernel; the two gated test workers do not.
    expect(rows.map((row) => row.kernel).sort()).toEqual([expect.stringMatching(/^(native (avx512f|avx2|baseline)|wasm)$/), '–', '–'].sort());
    expect(rows.map((row) => row.id).sort()).toEqual([...joined].sort());
    // Every training row of every epoch was computed by exactly one worker (455 rows × 300 epochs).
    expect(rows.reduce((sum, row) => sum + row.rows, 0)).toBe(455 * 300);
    // The one that went away is marked as left with its failure; all three computed rows.
    expect(rows).toHaveLength(3);
    expect(rows.filter((row) => row.className === 'left' && row.failures === '1')).toHaveLength(1);
    expect(rows.every((row) => row.rows > 0)).toBe(true);
    expect(await pointCount(page)).toBeGreaterThan(pointsWhilePaused);
    expect(await page.locator('#config').textContent()).toMatch(/breast_cancer\.csv/);
    expect(pageErrors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });
});

describe.skipIf(!existsSync(CHROMIUM) && process.env.CI !== 'true')('a dashboard opened mid-run (issue 14)', () => {
  it('shows the run at load, skips nothing, samples its live tail at the history stride, and fits every tile', async () => {
    /** Where the gated worker holds the run: past 8192 steps the history keeps every 4th step. */
    const HOLD_AT = 9000;
    const STRIDE = 4;
    // 200,000 epochs of 15 steps: a total of 3,000,000 steps, wider than the 50,000.
    const coordinator = startCli([
      'coordinator',
      '--data',
      join(REPO, 'data', 'breast_cancer.csv'),
      '--epochs',
      '200000',
      '--batch-size',
      '32',
      '--val-split',
      '0.2',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '1',
      '--token',
      TOKEN,
      '--step-timeout',
      '600000',
      '--backup-factor',
      '0',
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `http://127.0.0.1:${port}/?token=${TOKEN}`;
    const gated = startGatedWorker(`ws://127.0.0.1:${port}`, TOKEN, HOLD_AT);
    expect(await gated.held).toBe(HOLD_AT);
    // A first page follows the run until the stream has every step before the held one.
    const context = await browser();
    const watcher = await context.newPage();
    await watcher.goto(url);
    await watcher.waitForFunction((step) => Number(document.getElementById('loss-chart')?.dataset.step) >= step, HOLD_AT, { timeout: 30_000 });
    await watcher.close();

    // A fresh page, looked at right after `load`: no event has come over its socket by then.
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(url, { waitUntil: 'load' });
    const atLoad = await page.evaluate(() => ({
      state: document.body.dataset.state,
      source: document.body.dataset.source,
      step: document.getElementById('loss-chart')?.dataset.step,
      points: Number(document.getElementById('loss-chart')?.dataset.points),
      stride: document.getElementById('loss-chart')?.dataset.stride,
    }));
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-at-load.png') });
    expect(atLoad).toEqual({ state: 'training', source: 'snapshot', step: String(HOLD_AT), points: expect.any(Number), stride: String(STRIDE) });
    expect(await page.locator('#tile-step').textContent()).toBe(HOLD_AT.toLocaleString('en-US'));
    expect(await page.locator('#tile-percent').textContent()).toMatch(/^of 3,000,000 · 0\.3%$/);
    expect(Number(await page.locator('#tile-loss').textContent())).toBeGreaterThan(0);
    // Steps 0, 4, …, 8996 from the history, and the newest, 8999, as the last point.
    const gridPoints = (lastStep: number): number => Math.floor(lastStep / STRIDE) + 1 + (lastStep % STRIDE === 0 ? 0 : 1);
    expect(atLoad.points).toBe(gridPoints(HOLD_AT - 1));
    expect(await page.evaluate(overflowingTiles)).toEqual([]);

    // Its socket's own history replaces the snapshot: nothing is reported skipped.
    await page.waitForSelector('body[data-source="live"]', { timeout: 30_000 });
    // The run goes on: the live tail keeps the history's stride (the newest step as the one extra point).
    gated.release();
    await page.waitForFunction((step) => Number(document.getElementById('loss-chart')?.dataset.step) >= step, HOLD_AT + 4000, { timeout: 60_000 });
    const live = await page.evaluate(() => ({
      step: Number(document.getElementById('loss-chart')?.dataset.step),
      points: Number(document.getElementById('loss-chart')?.dataset.points),
      stride: document.getElementById('loss-chart')?.dataset.stride,
    }));
    expect(live.stride).toBe(String(STRIDE));
    expect(live.points).toBe(gridPoints(live.step - 1));
    await page.waitForFunction(() => document.querySelectorAll('#events li').length >= 2, null, { timeout: 10_000 });
    expect(await page.locator('#events').textContent()).not.toMatch(/skipped/);
    expect(await page.locator('#tile-dropped').textContent()).not.toMatch(/skipped/);

    // Narrower windows: 7 tiles in a row down to 1101 px, then 4 a row; every text still fits.
    for (const width of [1101, 1000, 700]) {
      await page.setViewportSize({ width, height: 1000 });
      // The tiles are fitted on the page's next table redraw; the assertion below names what does not fit.
      await page.waitForFunction(allTilesFit, undefined, { timeout: 10_000 }).catch(() => undefined);
      expect(await page.evaluate(overflowingTiles), `at ${width} px`).toEqual([]);
    }
    expect(pageErrors).toEqual([]);
    process.kill(coordinator.pid, 'SIGKILL');
  });
});

describe.skipIf(!existsSync(CHROMIUM) && process.env.CI !== 'true')('the dashboard against a scripted stream', () => {
  it('says "1 event skipped" and "3 events skipped", and fits the issue’s 37,500 of 50,000 and far larger counts', async () => {
    const loaded = loadDashboardAssets();
    if ('problem' in loaded) throw new Error(loaded.problem);
    const assets = loaded.assets;
    // A stand-in coordinator on 127.0.0.1 (port 0): the real files, and a /monitor that sends what the test scripts.
    const server = createServer((request, response) => {
      const asset = assets.get(new URL(request.url ?? '/', 'http://x').pathname);
      if (asset === undefined) return void response.writeHead(404).end();
      response.writeHead(200, { 'content-type': asset.contentType }).end(asset.body);
    });
    const wss = new WebSocketServer({ server, path: '/monitor' });
    const connected = new Promise<WebSocket>((resolve, reject) => {
      wss.once('connection', resolve);
      setTimeout(() => reject(new Error('the page did not connect to /monitor within 30 s')), 30_000).unref();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const page = await (await browser()).newPage();
      await page.goto(`http://127.0.0.1:${port}/?token=${TOKEN}`);
      const socket = await connected;
      const send = (message: MonitorMessage): void => socket.send(JSON.stringify(message));
      const start = (totalSteps: number, firstStep: number): RunStartEvent => ({
        type: 'run',
        event: 'start',
        totalSteps,
        firstStep,
        epochs: totalSteps / 10,
        stepsPerEpoch: 10,
        config: {
          data: '/data/a-rather-long-folder-name/and-a-long-file-name.csv',
          rows: 5_000_000,
          features: 30,
          trainRows: 4_000_000,
          valRows: 1_000_000,
          batchSize: 400_000,
          lr: 0.1,
          l2: 0,
          seed: 1,
          shuffle: true,
          standardize: true,
          valFraction: 0.2,
          chunksPerBatch: 8,
          optimizer: { optimizer: 'sgd' },
          workers: 3,
        },
        time: Date.now(),
      });
      const step = (n: number, time: number): StepEvent => ({
        type: 'step',
        step: n,
        epoch: Math.floor(n / 10),
        loss: 0.25,
        rows: 400_000,
        workers: 3,
        stepMs: 1,
        rowsPerSec: 4e8,
        time,
      });
      for (const [total, at] of [
        [50_000, 37_499],
        [99_999_999, 12_345_677],
      ] as const) {
        send({ type: 'history', events: 0, stepStride: 1, stepsSeen: 0, time: Date.now() });
        send(start(total, at - 2));
        const now = Date.now();
        send(step(at - 2, now - 2));
        send(step(at - 1, now - 1));
        send(step(at, now));
        const shown = (at + 1).toLocaleString('en-US');
        await page.waitForFunction((text) => document.getElementById('tile-step')?.textContent === text, shown, { timeout: 10_000 }).catch(() => undefined);
        expect(await page.locator('#tile-step').textContent()).toBe(shown);
        expect(await page.locator('#tile-percent').textContent()).toMatch(new RegExp(`^of ${total.toLocaleString('en-US')} · `));
        for (const width of [1400, 1101, 700]) {
          await page.setViewportSize({ width, height: 900 });
          await page.waitForFunction(allTilesFit, undefined, { timeout: 10_000 }).catch(() => undefined); // the assertion names what does not fit
          expect(await page.evaluate(overflowingTiles), `${shown} at ${width} px`).toEqual([]);
        }
      }
      send({ type: 'dropped', count: 1, time: Date.now() });
      await page.waitForFunction(() => document.querySelectorAll('#events li').length >= 2, null, { timeout: 10_000 }).catch(() => undefined);
      expect(await page.locator('#events li').first().textContent()).toMatch(/1 event skipped: this page fell behind$/);
      expect(await page.locator('#tile-dropped').textContent()).toBe('1 event skipped');
      send({ type: 'dropped', count: 2, time: Date.now() });
      await page
        .waitForFunction(() => document.getElementById('tile-dropped')?.textContent === '3 events skipped', null, { timeout: 10_000 })
        .catch(() => undefined);
      expect(await page.locator('#events li').first().textContent()).toMatch(/2 events skipped: this page fell behind$/);
      expect(await page.locator('#tile-dropped').textContent()).toBe('3 events skipped');
      await page.close();
    } finally {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }, 120_000);
});
