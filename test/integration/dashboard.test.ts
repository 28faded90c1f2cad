// The dashboard in a real browser (Debian's headless Chromium driven by playwright-core) against
// a real run: the loss chart's point count grows while training, the worker table lists every
// worker that joined (a killed one marked as left, with its failure), the run ends as finished,
// and a screenshot is saved to test-artifacts/dashboard.png.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, REPO, startCli } from '../helpers/cli.js';

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
      '60000',
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

    const workerArgs = ['worker', '--connect', `ws://127.0.0.1:${port}`, '--token', TOKEN, '--quiet'];
    const first = startCli(workerArgs);
    const second = startCli(workerArgs);
    await page.waitForFunction(() => Number(document.getElementById('loss-chart')?.dataset.points) >= 1500, null, { timeout: 30_000 });
    // Mid-run (step 1500 or so of 4500), freeze both workers (no step can commit), kill one, add a third: a departure and a join mid-run.
    process.kill(first.pid, 'SIGSTOP');
    process.kill(second.pid, 'SIGSTOP');
    const pointsWhilePaused = await pointCount(page);
    process.kill(first.pid, 'SIGKILL');
    startCli(workerArgs);
    await page.waitForFunction(() => document.querySelectorAll('#workers tbody tr').length >= 3, null, { timeout: 30_000 });
    process.kill(second.pid, 'SIGCONT');

    await page.waitForFunction((before) => Number(document.getElementById('loss-chart')?.dataset.points) > before, pointsWhilePaused, { timeout: 30_000 });
    await page.waitForSelector('body[data-state="finished"]', { timeout: 60_000 });
    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);

    const joined = [...coordinator.stderr().matchAll(/worker (\d+) joined/g)].map((match) => match[1]);
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
    expect(rows.filter((row) => row.className === 'left' && row.failures === '1').length).toBeGreaterThanOrEqual(1);
    expect(await pointCount(page)).toBeGreaterThan(pointsWhilePaused);
    expect(await page.locator('#config').textContent()).toMatch(/breast_cancer\.csv/);
    expect(pageErrors).toEqual([]);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  });
});
