// The package as a user gets it (issue #14 item 2): `npm pack` of this checkout, installed with
// production dependencies only into an empty folder (from npm's cache where it can), then that
// install's own `dpt` trains the bundled data with 2 local workers while its dashboard page and
// static files are fetched over HTTP. Nothing of the checkout is on the installed dpt's path: it
// runs from the empty folder, so a file missing from the package fails here. The tarball is
// packed from the dist/ that the integration run builds (--ignore-scripts: no second build).

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { killAll, REPO, startProgram, temporaryDirectory } from '../helpers/cli.js';

const run = promisify(execFile);
const directory = temporaryDirectory();
const MONITOR_TOKEN = 'package-monitor-token';
const { name, version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { name: string; version: string };
/** Where `npm pack` writes the tarball (its name is the package's name and version). */
const tarball = join(directory.path, `${name}-${version}.tgz`);
/** What a user's packages would never hold: the dev dependencies, by their top-level names. */
const DEV_PACKAGES = ['typescript', 'vitest', '@biomejs', 'playwright-core', 'dclint', 'ajv', '@types'];

afterAll(() => {
  killAll();
  directory.remove();
});

/** The environment without what `npm run` passes to its scripts (npm_config_*, npm_package_*), which would steer a nested npm. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
}

async function npm(args: string[], cwd: string): Promise<string> {
  const { stdout } = await run('npm', args, { cwd, env: cleanEnvironment(), timeout: 240_000, maxBuffer: 16 << 20 });
  return stdout;
}

/** PIDs whose parent is `pid`, from /proc/<pid>/stat (field 4). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // after "pid (comm) "
      if (Number(fields[1]) === pid) children.push(Number(entry));
    } catch {
      // The process ended while the directory was read.
    }
  }
  return children;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the packed package', () => {
  it('holds the built CLI, the dashboard files and the bundled data, and no sources, tests or dev files', async () => {
    const [packed] = JSON.parse(await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', directory.path], REPO)) as {
      name: string;
      filename: string;
      files: { path: string }[];
    }[];
    const files = packed!.files.map((file) => file.path);
    // The registry's `dpt` is another project's: this one's name must differ (and is free there).
    expect(packed!.name).toBe('dpt-trainer');
    expect(join(directory.path, packed!.filename)).toBe(tarball);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/cli/main.js',
        'dist/worker/client.js',
        'coordinator/dashboard/index.html',
        'coordinator/dashboard/dashboard.js',
        'coordinator/dashboard/dashboard.css',
        'data/breast_cancer.csv',
        'native/build.mjs',
      ]),
    );
    const isShipped = (path: string): boolean =>
      ['package.json', 'README.md', 'LICENSE'].includes(path) || /^(dist|coordinator\/dashboard|data|native)\//.test(path);
    const isDevFile = (path: string): boolean => /\.map$|\.tsbuildinfo$|^dist\/(bench|test)\//.test(path);
    expect(files.filter((path) => !isShipped(path) || isDevFile(path))).toEqual([]);
    // TypeScript sources stay out (declarations, if any, are part of an API).
    expect(files.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts'))).toEqual([]);
  }, 300_000);

  it('installs with production dependencies only, and its dpt trains the bundled data with 2 workers and serves the dashboard', async () => {
    if (!existsSync(tarball)) await npm(['pack', '--ignore-scripts', '--pack-destination', directory.path], REPO);
    const app = join(directory.path, 'app');
    mkdirSync(app);
    await npm(['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', tarball], app);
    const installed = join(app, 'node_modules', name);
    const modules = readdirSync(join(app, 'node_modules'));
    expect(modules).toContain(name);
    expect(modules.filter((name) => DEV_PACKAGES.includes(name))).toEqual([]);

    // The command users type: the installed bin, found by npm exec without any download (--offline).
    expect((await npm(['exec', '--offline', '--', 'dpt', '--version'], app)).trim()).toBe(version);

    const bin = join(app, 'node_modules', '.bin', 'dpt');
    const env = { ...cleanEnvironment(), DPT_CACHE_DIR: join(directory.path, 'cache') };
    // Epochs enough that the run cannot end before it is stopped: the page is fetched during training.
    const args = ['train', '--data', join(installed, 'data', 'breast_cancer.csv'), '--workers', '2', '--epochs', '100000', '--monitor-token', MONITOR_TOKEN];
    const train = startProgram(bin, [], args, { cwd: app, env });
    const [, printed] = await train.waitForLine(/dashboard (https?:\/\/\S+)/, 120_000);
    await train.waitForLine(/epoch 1\/100000/, 120_000);
    const workers = childrenOf(train.pid);

    const page = new URL('/', printed);
    page.searchParams.set('token', MONITOR_TOKEN);
    const html = await fetch(page);
    expect(html.status).toBe(200);
    const body = await html.text();
    // The page as packaged, with the run so far embedded in its snapshot element (the page draws it at load).
    const snapshot = /(<script type="application\/json" id="snapshot">)([^<]*)(<\/script>)/;
    expect(body.replace(snapshot, '$1$3')).toBe(readFileSync(join(REPO, 'coordinator', 'dashboard', 'index.html'), 'utf8'));
    expect(snapshot.exec(body)?.[2]).toMatch(/"type":"run","event":"start"/);
    expect(body).toMatch(/dashboard\.js/);
    // Static files: the page's script from the package, uPlot from the installed dependency.
    const script = await fetch(new URL('/dashboard.js', printed));
    expect(script.status).toBe(200);
    expect(await script.text()).toBe(readFileSync(join(REPO, 'coordinator', 'dashboard', 'dashboard.js'), 'utf8'));
    const uplot = await fetch(new URL('/uplot.js', printed));
    expect(uplot.status).toBe(200);
    expect(await uplot.text()).toBe(readFileSync(join(app, 'node_modules', 'uplot', 'dist', 'uPlot.iife.min.js'), 'utf8'));

    // dpt train stops its workers (by PID) on SIGTERM; any it left would be killed here, and fail the test.
    process.kill(train.pid, 'SIGTERM');
    const { code } = await train.exited(60_000);
    const leftover = workers.filter(isAlive);
    for (const pid of leftover) process.kill(pid, 'SIGKILL');
    expect(workers).toHaveLength(2);
    expect(leftover).toEqual([]);
    expect(code).toBe(130);
    expect(train.stdout() + train.stderr()).toMatch(/worker 2 (?:\([^)]*\) )?joined/);
  }, 360_000);
});
