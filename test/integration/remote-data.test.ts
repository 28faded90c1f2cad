// Data without copies (issue #11 item 4), through the real CLI: workers that cannot see the data
// file (hidden by a tmpfs mounted over its folder in their own mount namespace) train from the
// coordinator's GET /data to the same bits as a local run; a second worker on the same cache
// downloads nothing; `dpt worker --data http://…` reads from a real nginx the same way; and the
// bad cases (wrong token, a range past the end, no Range support, a corrupt served block, another
// file) each end with a clear line, training state untouched.

import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BinaryDatasetWriter } from '../../shared/binary-dataset.js';
import { type CliProcess, killAll, REPO, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { blockOf, dptLayout, featureOffset } from '../helpers/dpt-bytes.js';
import { modelHash } from '../helpers/model-hash.js';
import { findNginx, type NginxServer, startNginx } from '../helpers/nginx.js';

const directory = temporaryDirectory();
/** The data folder: hidden from the workers of the mount-namespace tests. */
const DATA_DIR = join(directory.path, 'data');
const OUT_DIR = join(directory.path, 'out');
const TOKEN = 'remote-data-token';
const MONITOR_TOKEN = 'remote-data-monitor';
// 60,000 rows × 20 features: 4.8 MB, five 1 MiB CRC blocks; row 40,000 lies in block 3.
const ROWS = 60_000;
const D = 20;
const BAD_ROW = 40_000;
const TRAIN_FLAGS = ['--epochs', '2', '--batch-size', '1024', '--lr', '0.1', '--seed', '7', '--val-split', '0.1'];
const good = join(DATA_DIR, 'good.dpt');
const flipped = join(DATA_DIR, 'flipped.dpt');
const other = join(DATA_DIR, 'other.dpt');
let localHash = '';
mkdirSync(DATA_DIR);
mkdirSync(OUT_DIR);

afterEach(() => killAll());
afterAll(() => {
  killAll();
  directory.remove();
});

/** Seeded rows with a linear rule for the label; `salt` makes another file of the same shape. */
function writeData(path: string, salt: number): void {
  let state = 4242 + salt;
  const next = (): number => {
    state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const x = Float32Array.from({ length: ROWS * D }, () => next() * 4);
  const y = Uint8Array.from({ length: ROWS }, (_, r) => (x[r * D]! - 0.7 * x[r * D + 1]! + x[r * D + 2]! + next() > 0 ? 1 : 0));
  const writer = new BinaryDatasetWriter(path, { featureNames: Array.from({ length: D }, (_, j) => `f${j}`), labelName: 'y' });
  writer.append(x, y, ROWS);
  writer.finish();
}

/** Why a tmpfs cannot be mounted over a folder in a new mount namespace here, or null when it can. */
function mountNamespaceUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs in a mount namespace (CI runs as root)';
  const probe = spawnSync('unshare', ['-m', 'sh', '-c', `mount -t tmpfs dpt-probe "${DATA_DIR}" && test ! -e "${good}"`], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) return `cannot hide a folder with unshare -m: ${probe.error?.message ?? probe.stderr.trim()}`;
  return null;
}

/** Runs `dpt` with DATA_DIR hidden under an empty tmpfs (its own mount namespace; same PID, killed as any). */
const HIDDEN = ['unshare', '-m', 'sh', '-c', `mount -t tmpfs dpt-hidden "${DATA_DIR}" && exec "$@"`, 'sh'];

beforeAll(async () => {
  writeData(good, 0);
  writeData(other, 1);
  const bytes = readFileSync(good);
  const layout = dptLayout(bytes);
  const at = featureOffset(layout, BAD_ROW, 5);
  expect(blockOf(layout, at)).toBe(3);
  bytes.writeUInt8(bytes[at]! ^ 0x01, at); // header and CRC table unchanged: the same identity, one bad block
  writeFileSync(flipped, bytes);
  const local = join(OUT_DIR, 'local.json');
  const result = await runCli(['train', '--data', good, '--workers', '2', ...TRAIN_FLAGS, '--out', local], {}, 120_000);
  expect(result.code, result.stderr).toBe(0);
  localHash = modelHash(local);
}, 180_000);

/** A coordinator for 'workers' workers on a free port; resolves once it listens. */
async function startCoordinator(data: string, workers: number, out: string, extra: string[] = []): Promise<{ cli: CliProcess; url: string; http: string }> {
  const cli = startCli([
    'coordinator',
    '--data',
    data,
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--workers',
    String(workers),
    '--token',
    TOKEN,
    ...TRAIN_FLAGS,
    '--out',
    out,
    ...extra,
  ]);
  const [, url = ''] = await cli.waitForLine(/listening on (ws:\/\/\S+)/, 60_000);
  return { cli, url, http: url.replace(/^ws:/, 'http:') };
}

function startWorker(url: string, cacheDirectory: string, extra: string[] = [], launcher: readonly string[] = HIDDEN): CliProcess {
  return startCli(['worker', '--connect', url, '--token', TOKEN, '--connect-timeout', '20000', ...extra], { DPT_CACHE_DIR: cacheDirectory }, launcher);
}

const hidden = mountNamespaceUnavailable();

describe.skipIf(hidden !== null)(`workers that cannot see the data file${hidden === null ? '' : ` (skipped: ${hidden})`}`, () => {
  const cache = join(directory.path, 'cache-shared');

  it("train from the coordinator's copy over /data to the same bits as a local run, and the announced path is absolute", async () => {
    const out = join(OUT_DIR, 'remote.json');
    // A relative --data: the coordinator must announce it resolved, or it means nothing elsewhere.
    const coordinator = await startCoordinator(relative(REPO, good), 2, out);
    // Two workers sharing one cache folder, fetching at the same time: neither may corrupt the other's blocks.
    const workers = [startWorker(coordinator.url, cache), startWorker(coordinator.url, cache)];
    for (const worker of workers) {
      const [, announced = ''] = await worker.waitForLine(/: (\S+) is not on this host; reading the data from (\S+) by range/, 60_000);
      expect(announced).toBe(good); // absolute, though the coordinator was given a relative path
    }
    expect((await coordinator.cli.exited(180_000)).code, coordinator.cli.stderr()).toBe(0);
    for (const worker of workers) expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    expect(modelHash(out)).toBe(localHash);
    // The workers really fetched: the coordinator served bytes over /data, and each says what it fetched.
    const [, served = '0'] = coordinator.cli.stderr().match(/served (\d+) bytes of the data file over \/data/) ?? [];
    expect(Number(served)).toBeGreaterThan(0);
    const fetched = workers.map((worker) => Number(/fetched (\d+) bytes of the data from http:\/\/127\.0\.0\.1:\d+\/data/.exec(worker.stderr())?.[1] ?? -1));
    expect(fetched[0]! + fetched[1]!).toBe(Number(served));
  }, 240_000);

  it("behind a relay, train from the coordinator's copy through the relay's /data to the same bits", async () => {
    const out = join(OUT_DIR, 'relayed.json');
    const coordinator = await startCoordinator(good, 2, out);
    // The relay sees the file (it needs none); its workers do not, and fetch /data from where they connected.
    const relay = startCli(['relay', '--connect', coordinator.url, '--host', '127.0.0.1', '--port', '0', '--token', TOKEN]);
    const [, relayUrl = ''] = await relay.waitForLine(/relay listening on (ws:\/\/\S+)/, 60_000);
    // A wrong token at the relay's /data is refused there, before anything is asked of the coordinator.
    const refused = await fetch(`${relayUrl.replace(/^ws:/, 'http:')}/data`, { headers: { authorization: 'Bearer wrong' } });
    expect(refused.status).toBe(401);
    const relayCache = join(directory.path, 'cache-relay');
    const workers = [startWorker(relayUrl, relayCache), startWorker(relayUrl, relayCache)];
    expect((await coordinator.cli.exited(180_000)).code, coordinator.cli.stderr()).toBe(0);
    for (const worker of workers) expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    await relay.exited(30_000);
    expect(modelHash(out)).toBe(localHash);
    // Fetched from the relay's port, which passed the requests through to the coordinator.
    const relayHttp = relayUrl.replace(/^ws:/, 'http:');
    const fetched = workers.map((worker) => Number(new RegExp(`fetched (\\d+) bytes of the data from ${relayHttp}/data`).exec(worker.stderr())?.[1] ?? -1));
    expect(fetched[0]! + fetched[1]!).toBeGreaterThan(0);
    expect(relay.stderr()).toMatch(/passing \/data through to the coordinator/);
    const [, served = '0'] = coordinator.cli.stderr().match(/served (\d+) bytes of the data file over \/data/) ?? [];
    expect(Number(served)).toBe(fetched[0]! + fetched[1]!);
  }, 240_000);

  it('a worker on the same cache folder downloads nothing the next time', async () => {
    const out = join(OUT_DIR, 'cached.json');
    const coordinator = await startCoordinator(good, 1, out);
    const worker = startWorker(coordinator.url, cache);
    expect((await coordinator.cli.exited(180_000)).code, coordinator.cli.stderr()).toBe(0);
    expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    expect(modelHash(out)).toBe(localHash);
    expect(worker.stderr()).toMatch(/fetched 0 bytes of the data from \S+ in 0 request\(s\): 0 block\(s\) fetched, [1-9]\d* found in the cache/);
    expect(coordinator.cli.stderr()).not.toMatch(/served \d+ bytes/);
  }, 240_000);

  it("train on a CSV run from the coordinator's converted .dpt (the compose default), to the bits of a local run", async () => {
    const csv = join(DATA_DIR, 'breast_cancer.csv');
    copyFileSync(join(REPO, 'data', 'breast_cancer.csv'), csv);
    const flags = ['--epochs', '3', '--batch-size', '32', '--seed', '2'];
    const local = join(OUT_DIR, 'csv-local.json');
    const reference = await runCli(
      ['train', '--data', csv, '--workers', '1', ...flags, '--out', local],
      { DPT_CACHE_DIR: join(directory.path, 'cache-csv-local') },
      120_000,
    );
    expect(reference.code, reference.stderr).toBe(0);
    const out = join(OUT_DIR, 'csv-remote.json');
    const cli = startCli(['coordinator', '--data', csv, '--host', '127.0.0.1', '--port', '0', '--workers', '1', '--token', TOKEN, ...flags, '--out', out], {
      DPT_CACHE_DIR: join(directory.path, 'cache-csv-coordinator'),
    });
    const [, url = ''] = await cli.waitForLine(/listening on (ws:\/\/\S+)/, 60_000);
    const worker = startWorker(url, join(directory.path, 'cache-csv-worker'));
    expect((await cli.exited(180_000)).code, cli.stderr()).toBe(0);
    expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    expect(worker.stderr()).toMatch(/breast_cancer\.csv is not on this host; reading the data from http:\/\/127\.0\.0\.1:\d+\/data by range/);
    expect(modelHash(out)).toBe(modelHash(local));
  }, 240_000);

  it('fetch over https:// with the CA of their wss:// connection, to the same bits', async () => {
    const key = join(directory.path, 'key.pem');
    const cert = join(directory.path, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      {
        stdio: 'ignore',
      },
    );
    const out = join(OUT_DIR, 'tls.json');
    const cli = startCli([
      'coordinator',
      '--data',
      good,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '1',
      '--token',
      TOKEN,
      ...TRAIN_FLAGS,
      '--out',
      out,
      '--tls-cert',
      cert,
      '--tls-key',
      key,
    ]);
    const [, url = ''] = await cli.waitForLine(/listening on (wss:\/\/\S+)/, 60_000);
    const worker = startWorker(url, join(directory.path, 'cache-tls'), ['--ca', cert]);
    expect((await cli.exited(180_000)).code, cli.stderr()).toBe(0);
    expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    expect(worker.stderr()).toMatch(/fetched [1-9]\d* bytes of the data from https:\/\/127\.0\.0\.1:\d+\/data/);
    expect(modelHash(out)).toBe(localHash);
  }, 240_000);

  it('a worker whose copy cannot be fetched (wrong token) fails promptly with a clear line, and a good worker then trains to the same bits', async () => {
    const out = join(OUT_DIR, 'after-fault.json');
    const coordinator = await startCoordinator(good, 1, out);
    // The monitor token opens the dashboard but not the data: the worker joins with the right
    // token, so the fault shows at its first fetch; here the fetch uses a fresh cache.
    const bad = startCli(
      ['worker', '--connect', coordinator.url, '--token', TOKEN, '--data', `${coordinator.http}/data?token=x`, '--connect-timeout', '20000'],
      { DPT_CACHE_DIR: join(directory.path, 'cache-bad') },
      HIDDEN,
    );
    // --data as a URL carries no credentials (it may be any server): the coordinator refuses it.
    expect((await bad.exited(60_000)).code).toBe(2);
    expect(bad.stderr()).toMatch(/dpt: http:\/\/127\.0\.0\.1:\d+\/data: bytes 0 to 63: HTTP 401 Unauthorized: the server wants credentials \(DPT_DATASET\)/);
    await coordinator.cli.waitForLine(/closing connection from .*: worker failed: .*HTTP 401/, 30_000);
    const good1 = startWorker(coordinator.url, join(directory.path, 'cache-after-fault'));
    expect((await coordinator.cli.exited(180_000)).code, coordinator.cli.stderr()).toBe(0);
    expect((await good1.exited(30_000)).code).toBe(0);
    expect(modelHash(out)).toBe(localHash);
  }, 240_000);
});

describe('GET /data on the coordinator', () => {
  it("serves the .dpt file by range to the workers' token only, 416 past the end, and no other file", async () => {
    const coordinator = await startCoordinator(good, 1, join(OUT_DIR, 'unused.json'), ['--monitor-token', MONITOR_TOKEN]);
    const bytes = readFileSync(good);
    const get = (path: string, headers: Record<string, string>): Promise<Response> => fetch(`${coordinator.http}${path}`, { headers });
    const bearer = { authorization: `Bearer ${TOKEN}` };

    const ranged = await get('/data', { ...bearer, range: 'bytes=100-1099' });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 100-1099/${bytes.length}`);
    expect(ranged.headers.get('content-length')).toBe('1000');
    expect(ranged.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    expect(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(100, 1100))).toBe(true);

    const tail = await get('/data', { ...bearer, range: 'bytes=-64' });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 64))).toBe(true);

    const whole = await get('/data', bearer);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);

    const past = await get('/data', { ...bearer, range: `bytes=${bytes.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${bytes.length}`);

    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${MONITOR_TOKEN}` }]) {
      const refused = await get('/data', { ...headers, range: 'bytes=0-63' });
      expect(refused.status).toBe(401);
      expect(await refused.text()).toMatch(/workers' token/);
    }
    // The monitor token still opens what it should (the route did not take over the others).
    expect((await get('/metrics', { authorization: `Bearer ${MONITOR_TOKEN}` })).status).toBe(200);
    // One file only: no path reaches another (a query is ignored, the file is the same).
    for (const path of ['/data/', '/data/x', '/data%2f..%2fetc%2fpasswd', '/data/..%2f..%2fetc%2fpasswd', '/data.dpt']) {
      expect((await get(path, bearer)).status, path).toBe(404);
    }
    const queried = await get('/data?path=/etc/passwd', { ...bearer, range: 'bytes=0-63' });
    expect(Buffer.from(await queried.arrayBuffer()).equals(bytes.subarray(0, 64))).toBe(true);
    expect((await fetch(`${coordinator.http}/data`, { method: 'POST', headers: bearer })).status).toBe(405);
  }, 120_000);
});

const nginx = findNginx();

describe.skipIf(nginx.path === null)(`dpt worker --data http://… against nginx${nginx.path === null ? ` (skipped: ${nginx.why})` : ''}`, () => {
  let server: NginxServer;
  beforeAll(async () => {
    const work = join(directory.path, 'nginx');
    mkdirSync(work);
    // A copy outside the hidden folder: nginx runs in the host's mount namespace anyway.
    const served = join(directory.path, 'served');
    mkdirSync(served);
    for (const name of ['good.dpt', 'flipped.dpt', 'other.dpt']) copyFileSync(join(DATA_DIR, name), join(served, name));
    writeFileSync(join(served, 'truncated.dpt'), readFileSync(good).subarray(0, 2_000_000));
    server = await startNginx(nginx.path!, served, work); // non-null: the describe is skipped without it
  }, 30_000);
  afterAll(() => server?.stop());

  it('trains to the same bits reading from nginx by range', async () => {
    const out = join(OUT_DIR, 'nginx.json');
    const coordinator = await startCoordinator(good, 1, out);
    const worker = startWorker(coordinator.url, join(directory.path, 'cache-nginx'), ['--data', `${server.url}/good.dpt`], []);
    expect((await coordinator.cli.exited(180_000)).code, coordinator.cli.stderr()).toBe(0);
    expect((await worker.exited(30_000)).code, worker.stderr()).toBe(0);
    expect(modelHash(out)).toBe(localHash);
    expect(worker.stderr()).toMatch(new RegExp(`fetched [1-9]\\d* bytes of the data from ${server.url}/good\\.dpt`));
    expect(server.accessLog()).toMatch(/"GET \/good\.dpt HTTP\/1\.1" 206 /);
    // The coordinator served nothing itself.
    expect(coordinator.cli.stderr()).not.toMatch(/served \d+ bytes/);
  }, 240_000);

  it.each([
    ['a missing file', '/missing.dpt', /bytes 0 to 63: HTTP 404 Not Found \(expected 206 Partial Content\)/],
    ['a server without Range support', '/norange/good.dpt', /answered 200 with the whole file: it does not support HTTP Range requests/],
    ['another file', '/other.dpt', /is not the coordinator's data: its identity is [0-9a-f]{16}…, the run's is [0-9a-f]{16}…/],
    [
      'a truncated copy (its CRC table lies past the end)',
      '/truncated.dpt',
      /bytes \d+ to \d+: HTTP 416 Range Not Satisfiable: the file ends before these bytes \(it has 2000000 bytes\)/,
    ],
  ])(
    'refuses %s with one clear line naming the URL (exit 2), promptly reported to the coordinator',
    async (_case, path, problem) => {
      const coordinator = await startCoordinator(good, 1, join(OUT_DIR, 'unused.json'));
      const worker = startWorker(coordinator.url, join(directory.path, `cache-${path.replace(/\W/g, '')}`), ['--data', `${server.url}${path}`], []);
      expect((await worker.exited(60_000)).code).toBe(2);
      const lines = worker.stderr().trim().split('\n');
      const last = lines[lines.length - 1] ?? '';
      expect(last).toMatch(new RegExp(`^dpt: ${server.url.replace(/\./g, '\\.')}${path.replace(/\./g, '\\.')}: `));
      expect(last).toMatch(problem);
      expect(last).toMatch(/\(DPT_DATASET\)$/);
      expect(worker.stderr()).not.toMatch(/\n\s+at /); // no stack trace
      await coordinator.cli.waitForLine(/closing connection from .*: worker failed: /, 30_000);
    },
    120_000,
  );

  it('refuses a block that fails its CRC as served, names URL and block, and the run goes on to the same bits with a good worker', async () => {
    const out = join(OUT_DIR, 'after-crc.json');
    const coordinator = await startCoordinator(good, 1, out);
    const cache = join(directory.path, 'cache-flipped');
    const bad = startWorker(coordinator.url, cache, ['--data', `${server.url}/flipped.dpt`], []);
    expect((await bad.exited(60_000)).code).toBe(2);
    expect(bad.stderr()).toMatch(
      new RegExp(`dpt: ${server.url.replace(/\./g, '\\.')}/flipped\\.dpt: content block 3 of 5 \\(file bytes \\d+ to \\d+\\) as served fails its CRC-32 check`),
    );
    // The coordinator checks its own copy of that block, finds it good, and refuses only that worker.
    await coordinator.cli.waitForLine(/worker \d+'s copy of the data fails content block 3; the coordinator's copy passes/, 30_000);
    // The bad block never reached the cache: the same cache, fed from a good copy, trains to the same bits.
    const good1 = startWorker(coordinator.url, cache, ['--data', `${server.url}/good.dpt`], []);
    expect((await coordinator.cli.exited(180_000)).code, coordinator.cli.stderr()).toBe(0);
    expect((await good1.exited(30_000)).code, good1.stderr()).toBe(0);
    expect(modelHash(out)).toBe(localHash);
  }, 240_000);
});
