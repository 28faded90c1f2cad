// Issue #14 items 3 and 4, as a newcomer meets them: the dashboard link `dpt train` prints opens
// as printed (a generated read-only monitor token in it, which also reads /status and cannot join
// as a worker); `dpt coordinator` on 0.0.0.0 prints a reachable host and its generated token
// once; Ctrl-C says what the run lost and where its checkpoint is; worker ids are taken only by a
// successful handshake; a worker is named by its host name; a goodbye is said once.

import { readFileSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { workerName } from '../../shared/protocol.js';
import { type CliProcess, killAll, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => {
  killAll();
  directory.remove();
});

const DATA = ['--data', 'data/breast_cancer.csv'];
/** Far more steps than any test waits for: the run is still going when it is interrupted (9 steps per epoch). */
const ENDLESS = ['--epochs', '1000000', '--batch-size', '64', '--lr', '0.1', '--seed', '4'];
const TOKEN = 'links-test-token';

/** Resolves with the HTTP status and body of a GET (the body read to the end: no socket is left open). */
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { headers });
  return { status: response.status, body: await response.text() };
}

/** How many times `needle` occurs in `text`. */
function occurrences(text: string, needle: string): number {
  return text.split(needle).length - 1;
}

async function startCoordinator(flags: string[]): Promise<{ coordinator: CliProcess; url: string }> {
  const coordinator = startCli(['coordinator', ...DATA, '--host', '127.0.0.1', '--port', '0', '--token', TOKEN, ...flags]);
  const [, url] = await coordinator.waitForLine(/listening on (ws:\/\/\S+)/, 60_000);
  return { coordinator, url: url! }; // the pattern has one group
}

describe('dpt train: the printed dashboard link', () => {
  it('opens as printed, with a generated read-only token that reads /status, is printed once, and cannot join as a worker', async () => {
    const train = startCli(['train', ...DATA, ...ENDLESS, '--workers', '1', '--no-pin']);
    const [, printed] = await train.waitForLine(/^dashboard (http:\/\/\S+)/m, 60_000);
    const link = new URL(printed!);
    const token = link.searchParams.get('token');
    expect(token, train.stderr()).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    // The link as printed opens the page; without its token the same page is refused.
    const page = await get(link.href);
    expect(page.status, page.body).toBe(200);
    expect(page.body).toMatch(/<html/i);
    expect((await get(`${link.origin}/`)).status).toBe(401);
    // The monitor token reads /status, as a query parameter or a bearer header; nothing else does.
    const status = await get(`${link.origin}/status?token=${token}`);
    expect(status.status, status.body).toBe(200);
    expect(JSON.parse(status.body)).toHaveProperty('totalSteps', 9_000_000);
    expect((await get(`${link.origin}/status`, { authorization: `Bearer ${token}` })).status).toBe(200);
    expect((await get(`${link.origin}/status`)).status).toBe(401);
    expect((await get(`${link.origin}/status?token=wrong`)).status).toBe(401);
    // Read-only: a worker presenting it is refused.
    const intruder = await runCli(['worker', '--connect', `ws://${link.host}`, '--token', token!, '--connect-timeout', '10000'], {}, 60_000);
    expect(intruder.code).toBe(1);
    expect(intruder.stderr).toMatch(/wrong or missing token/);
    expect(occurrences(train.stdout() + train.stderr(), token!)).toBe(1);

    // Ctrl-C mid-run: one line saying what was lost, exit 130.
    await train.waitForLine(/^epoch 2\/1000000 /m, 120_000);
    // Its worker is in by now: /status says which code runs its kernel.
    const running = JSON.parse((await get(`${link.origin}/status?token=${token}`)).body) as { workers: unknown[] };
    expect(running.workers).toEqual([expect.objectContaining({ id: 1, kernel: expect.stringMatching(/^(native (avx512f|avx2|baseline)|wasm)$/) })]);
    train.child.kill('SIGINT');
    const { code } = await train.exited(30_000);
    expect(code, train.stderr()).toBe(130);
    const [, at, done] =
      train
        .stderr()
        .match(
          /^dpt: stopped by SIGINT at step (\d+) of 9000000: the (\d+) step\(s\) done are lost, and no model was written \(with --checkpoint FILE they would be kept, and --resume FILE goes on\)$/m,
        ) ?? [];
    expect(at, train.stderr()).toBeDefined();
    expect(Number(at)).toBeGreaterThanOrEqual(18);
    expect(done).toBe(at);
  }, 300_000);
});

describe('dpt coordinator on every interface', () => {
  it('prints a reachable host instead of 0.0.0.0 and its generated token once; the dashboard link opens', async () => {
    const coordinator = startCli(['coordinator', ...DATA, ...ENDLESS, '--host', '0.0.0.0', '--port', '0', '--join-timeout', '120000']);
    const [, host, port] = await coordinator.waitForLine(/listening on ws:\/\/(\S+):(\d+)/, 60_000);
    const [, printed] = await coordinator.waitForLine(/^dashboard (http:\/\/\S+)/m, 60_000);
    expect(host).not.toBe('0.0.0.0');
    // An address of this machine that is not loopback (or, on a machine without one, its name).
    const own = Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .filter((info) => !info.internal)
      .map((info) => (info.family === 'IPv6' ? `[${info.address}]` : info.address));
    expect([...own, hostname()]).toContain(host);
    expect(new URL(printed!).host).toBe(`${host}:${port}`);
    const [, workersToken] = await coordinator.waitForLine(/generated one: (\S+)/, 60_000);
    const everything = (): string => coordinator.stdout() + coordinator.stderr();
    expect(occurrences(everything(), workersToken!), everything()).toBe(1);
    // The link's token (the monitor's, not the workers') opens the page, reached here over loopback.
    const monitorToken = new URL(printed!).searchParams.get('token');
    expect(monitorToken).not.toBe(workersToken);
    expect((await get(`http://127.0.0.1:${port}/?token=${monitorToken}`)).status).toBe(200);
    expect((await get(`http://127.0.0.1:${port}/status?token=${monitorToken}`)).status).toBe(200);
    // Ctrl-C before any worker came: nothing was trained, and it says so.
    coordinator.child.kill('SIGINT');
    expect((await coordinator.exited(30_000)).code).toBe(130);
    expect(coordinator.stderr()).toMatch(/^dpt: stopped by SIGINT before the first step: nothing was trained$/m);
  }, 180_000);
});

describe('dpt coordinator and its workers', () => {
  it('gives id 1 to the first worker after rejected connections, names it by its host, says its goodbye once, and says what Ctrl-C lost', async () => {
    const { coordinator, url } = await startCoordinator([...ENDLESS, '--workers', '1', '--join-timeout', '120000']);
    // Two connections refused before any handshake succeeds: a wrong token, and garbage for a hello.
    const refused = await runCli(['worker', '--connect', url, '--token', 'wrong', '--connect-timeout', '10000'], {}, 60_000);
    expect(refused.code).toBe(1);
    const closed = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(url, { perMessageDeflate: false });
      const timer = setTimeout(() => reject(new Error('the garbage hello was not closed within 15 s')), 15_000);
      socket.on('open', () => socket.send(Buffer.from([0xc1, 0x00, 0xff])));
      socket.on('close', (code) => {
        clearTimeout(timer);
        resolve(code);
      });
      socket.on('error', () => undefined); // the close reports the outcome
    });
    expect(closed).toBe(1008);
    await coordinator.waitForCount(/^closing connection from /m, 2, 30_000);

    const worker = startCli(['worker', '--connect', url, '--token', TOKEN]);
    const name = workerName(hostname());
    const [joined] = await coordinator.waitForLine(/^worker \d+.* joined from .*$/m, 60_000);
    // …and which code runs its kernel (the addon's build for this CPU, or WebAssembly without it).
    expect(joined).toMatch(
      new RegExp(`^worker 1 \\(${name?.replace(/\./g, '\\.')}\\) joined from 127\\.0\\.0\\.1:\\d+ \\(kernel: (native (avx512f|avx2|baseline)|wasm)\\)$`),
    );

    // The goodbye of a SIGTERM'd worker: one line, "left" once.
    await coordinator.waitForLine(/^epoch 2\/1000000 /m, 120_000);
    worker.child.kill('SIGTERM');
    expect((await worker.exited(30_000)).code).toBe(0);
    await coordinator.waitForLine(/^worker 1 .*left: /m, 30_000);
    expect(coordinator.stderr()).toMatch(new RegExp(`^worker 1 \\(${name?.replace(/\./g, '\\.')}\\) left: said goodbye \\(SIGTERM\\)$`, 'm'));
    expect(coordinator.stderr()).not.toMatch(/left: left|is leaving/);

    coordinator.child.kill('SIGINT');
    expect((await coordinator.exited(30_000)).code).toBe(130);
    const [, at, done] =
      coordinator.stderr().match(/^dpt: stopped by SIGINT at step (\d+) of 9000000: the (\d+) step\(s\) done are lost, and no model was written/m) ?? [];
    expect(at, coordinator.stderr()).toBeDefined();
    expect(Number(at)).toBeGreaterThanOrEqual(18);
    expect(done).toBe(at);
  }, 300_000);

  it('says where the checkpoint is when Ctrl-C stops a run that has one, and which step it holds', async () => {
    const checkpoint = join(directory.path, 'run.ckpt');
    const { coordinator, url } = await startCoordinator([...ENDLESS, '--workers', '1', '--checkpoint', checkpoint, '--checkpoint-every', '5']);
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    await coordinator.waitForLine(/^epoch 3\/1000000 /m, 120_000);
    coordinator.child.kill('SIGINT');
    expect((await coordinator.exited(30_000)).code).toBe(130);
    const escaped = checkpoint.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    const line = new RegExp(
      `^dpt: stopped by SIGINT at step (\\d+) of 9000000: ${escaped} holds step (\\d+) \\((\\d+) later step\\(s\\) lost\\); --resume ${escaped} goes on from there$`,
      'm',
    );
    const [, at, held, lost] = coordinator.stderr().match(line) ?? [];
    expect(at, coordinator.stderr()).toBeDefined();
    // The step the line names is the one in the file.
    const file = JSON.parse(readFileSync(checkpoint, 'utf8')) as { state: { step: number } };
    expect(file.state.step).toBe(Number(held));
    expect(Number(at) - Number(held)).toBe(Number(lost));
    expect(Number(held)).toBeGreaterThanOrEqual(18);
  }, 300_000);
});
