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
