// The dashboard in a real browser (Debian's headless Chromium driven by playwright-core) against
// a real run: the loss chart's point count grows while training, the worker table lists every
// worker that joined (a killed one marked as left, with its failure), the run ends as finished,
// and a screenshot is saved to test-artifacts/dashboard.png. The run is held mid-way by gated
// workers (it provably cannot end meanwhile), not by freezing processes that may have exited.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
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

/**
 * The little of the DOM that the page-side functions below use (they run in the browser): this
 * project type-checks against Node's globals, and the declaration stays inside this module.
 */
declare const document: {
  getElementById(id: string): { dataset: Record<string, string | undefined> } | null;
  querySelectorAll(selector: string): { length: number };
};

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
    // A fresh profile directory each run (playwright takes it as the persistent context's directory, not as --user-data-dir).
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1400, height: 1000 },
      timeout: 30_000,
    });
    const page = await context.newPage();
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
        rows: Number((await row.locator('td').nth(5).textContent())?.replaceAll(',', '')),
        failures: await row.locator('td').nth(6).textContent(),
      })),
    );
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
