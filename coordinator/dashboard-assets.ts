// The dashboard's static files, read once at startup: the page, its script and style from
// coordinator/dashboard/ (found from the source file or from dist/), and uPlot from node_modules.
// Served by the coordinator itself, never from a CDN.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
}

/** URL path → file, below the dashboard folder or inside the uplot package. */
const PAGES = {
  '/': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', contentType: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', contentType: 'text/css; charset=utf-8' },
} as const;
const UPLOT = {
  '/uplot.js': { file: 'uplot/dist/uPlot.iife.min.js', contentType: 'text/javascript; charset=utf-8' },
  '/uplot.css': { file: 'uplot/dist/uPlot.min.css', contentType: 'text/css; charset=utf-8' },
} as const;

/** The page's empty data block that the coordinator fills with the stream so far (index.html). */
const SNAPSHOT_ELEMENT = '<script type="application/json" id="snapshot"></script>';

/**
 * The page with `json` (already safe inside a script element: no `<`) in its snapshot block, so
 * that it draws the run before its socket connects; the page unchanged if it has no such block.
 */
export function pageWithSnapshot(page: Buffer, json: string): Buffer {
  const html = page.toString('utf8');
  const at = html.indexOf(SNAPSHOT_ELEMENT);
  if (at < 0) return page;
  const open = SNAPSHOT_ELEMENT.slice(0, SNAPSHOT_ELEMENT.indexOf('</script>'));
  return Buffer.from(`${html.slice(0, at)}${open}${json}</script>${html.slice(at + SNAPSHOT_ELEMENT.length)}`);
}

/**
 * The assets by URL path, or the reason they cannot be served. This file runs from
 * coordinator/ under vitest and from dist/coordinator/ when built; the folder is looked up
 * beside it first, then in the source tree the build mirrors.
 */
export function loadDashboardAssets(): { assets: Map<string, Asset> } | { problem: string } {
  const candidates = [new URL('./dashboard/', import.meta.url), new URL('../../coordinator/dashboard/', import.meta.url)];
  const folder = candidates.find((url) => existsSync(new URL('index.html', url)));
  if (folder === undefined) return { problem: `dashboard files not found in ${candidates.map((url) => fileURLToPath(url)).join(' or ')}` };
  const assets = new Map<string, Asset>();
  const require = createRequire(import.meta.url);
  try {
    for (const [path, page] of Object.entries(PAGES)) assets.set(path, { body: readFileSync(new URL(page.file, folder)), contentType: page.contentType });
    for (const [path, page] of Object.entries(UPLOT)) assets.set(path, { body: readFileSync(require.resolve(page.file)), contentType: page.contentType });
  } catch (error) {
    return { problem: `cannot read the dashboard files: ${error instanceof Error ? error.message : String(error)}` };
  }
  return { assets };
}
