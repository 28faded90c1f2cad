// Security and hostile input (issues 4 and 10): tokens on non-loopback addresses (decided from
// the resolved address), kernel and Node.js checks, TLS, a connection flood, hostile frames in
// every state a connection goes through before and after the handshake, and a protocol fuzzer
// against a real training that cannot move on while only the fuzzer's peers are connected.

import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { supportedKernelIds } from '../../shared/model-kernel.js';
import { encodeMessage, PROTOCOL_VERSION } from '../../shared/protocol.js';
import { CLI, killAll, REPO, runCli, startCli, temporaryDirectory } from '../helpers/cli.js';
import { assignedChunks, leafSubtrees, startFakeWorker } from '../helpers/fake-worker.js';
import { modelHash } from '../helpers/model-hash.js';
import { frame, hostileFrames, type RawPeer, rawUpgrade } from '../helpers/raw-websocket.js';

const directory = temporaryDirectory();
/** Processes this file starts without the CLI helper (under unshare), killed by PID in cleanup. */
const ownChildren = new Set<ChildProcess>();
afterAll(() => {
  killAll();
  for (const child of ownChildren) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  directory.remove();
});

const TOKEN = 'security-token';
const FLAGS = ['--data', 'data/breast_cancer.csv', '--batch-size', '50', '--lr', '0.3', '--seed', '3'];

async function referenceHash(epochs: number): Promise<string> {
  const out = join(directory.path, `reference-${epochs}.json`);
  const result = await runCli(['train', ...FLAGS, '--epochs', String(epochs), '--workers', '2', '--out', out]);
  expect(result.code, result.stderr).toBe(0);
  return modelHash(out);
}

/** Opens a WebSocket, runs `act`, resolves with how the peer was closed. */
function connect(url: string, act: (socket: WebSocket) => void, options: WebSocket.ClientOptions = {}): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { perMessageDeflate: false, ...options });
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('not closed within 15 s'));
    }, 15_000);
    socket.on('open', () => act(socket));
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
    socket.on('error', () => undefined); // close reports the outcome
  });
}

/** Whether this machine lets an unprivileged process have its own mount namespace (to give the coordinator its own /etc/hosts). */
const canUnshare = spawnSync('unshare', ['-rm', 'true']).status === 0;

/** Runs the CLI with its own /etc/hosts (a user and mount namespace); resolves with a line matcher. */
function startWithHosts(
  hosts: string,
  args: string[],
): { child: ChildProcess; output: () => string; waitForLine: (pattern: RegExp) => Promise<RegExpMatchArray> } {
  const hostsPath = join(directory.path, 'hosts');
  writeFileSync(hostsPath, hosts);
  const child = spawn('unshare', ['-rm', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hostsPath, process.execPath, CLI, ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  ownChildren.add(child);
  let output = '';
  const watchers: (() => void)[] = [];
  const append = (chunk: Buffer): void => {
    output += chunk.toString();
    for (const watcher of [...watchers]) watcher();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return {
    child,
    output: () => output,
    waitForLine: (pattern) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within 30 s:\n${output}`)), 30_000);
        const check = (): void => {
          const match = output.match(pattern);
          if (match === null) return;
          clearTimeout(timer);
          watchers.splice(watchers.indexOf(check), 1);
          resolve(match);
        };
        watchers.push(check);
        check();
      }),
  };
}

describe('authentication', () => {
  it('generates and prints a token when listening on a non-loopback address without one', async () => {
    const coordinator = startCli(['coordinator', ...FLAGS, '--epochs', '2', '--host', '0.0.0.0', '--port', '0']);
    // The wildcard is printed as an address of this machine (first-hour-links.test.ts checks which).
    // Each wait ends well inside the test's limit, so a stall names itself and shows the output.
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/\S+:(\d+)/, 10_000);
    const [, token] = await coordinator.waitForLine(/generated one: (\S+)$/m, 10_000);
    const url = `ws://127.0.0.1:${port}`;
    const refused = await runCli(['worker', '--connect', url], {}, 15_000);
    expect(refused.code, `${refused.stderr}\ncoordinator:\n${coordinator.stderr()}`).toBe(1);
    expect(refused.stderr).toMatch(/wrong or missing token/);
    const worker = startCli(['worker', '--connect', url, '--token', token as string]);
    const done = await coordinator.exited(15_000).catch((error: Error) => {
      throw new Error(`${error.message}\nworker:\n${worker.stdout()}${worker.stderr()}`);
    });
    expect(done.code, coordinator.stderr()).toBe(0);
    expect((await worker.exited(10_000)).code, worker.stderr()).toBe(0);
  });

  it.skipIf(!canUnshare)('requires the token for a host name that starts with 127. but resolves to a non-loopback address', async () => {
    // 127.lan resolves to the wildcard address here: bound on every interface, reached below over loopback only.
    const coordinator = startWithHosts('0.0.0.0 127.lan\n127.0.0.1 localhost\n', [
      'coordinator',
      ...FLAGS,
      '--epochs',
      '2',
      '--host',
      '127.lan',
      '--port',
      '0',
    ]);
    // 127.lan is the wildcard here: the URL shows an address of this machine instead.
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/\S+:(\d+)/);
    const status = async (headers: Record<string, string> = {}): Promise<number> => {
      const response = await fetch(`http://127.0.0.1:${port}/status`, { headers });
      await response.body?.cancel();
      return response.status;
    };
    expect(await status(), coordinator.output()).toBe(401);
    const [, token] = await coordinator.waitForLine(/no --token given for non-loopback host 127\.lan \(0\.0\.0\.0\); generated one: (\S+)$/m);
    expect(await status({ authorization: `Bearer ${token}` })).toBe(200);
    const refused = await runCli(['worker', '--connect', `ws://127.0.0.1:${port}`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/wrong or missing token/);
    if (coordinator.child.pid !== undefined) process.kill(coordinator.child.pid, 'SIGKILL');
  });

  it('refuses a worker with another kernel or another Node.js major version', async () => {
    const coordinator = startCli(['coordinator', ...FLAGS, '--host', '127.0.0.1', '--port', '0', '--token', TOKEN, '--join-timeout', '30000']);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    const kernel = await connect(url, (s) =>
      s.send(encodeMessage({ kind: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, node: process.version, kernel: 'other-kernel', cpus: '' })),
    );
    expect(kernel).toEqual({ code: 1008, reason: expect.stringMatching(/offers kernels other-kernel; this run needs/) });
    const node = await connect(url, (s) =>
      s.send(encodeMessage({ kind: 'hello', protocol: PROTOCOL_VERSION, token: TOKEN, node: 'v18.19.0', kernel: supportedKernelIds().join(','), cpus: '' })),
    );
    expect(node).toEqual({ code: 1008, reason: expect.stringMatching(/runs Node\.js v18\.19\.0; this run needs major version/) });
    process.kill(coordinator.pid, 'SIGKILL');
  });
});

describe('TLS', () => {
  it('trains over wss:// with a CA the worker trusts, and refuses an untrusted certificate', async () => {
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
    const out = join(directory.path, 'tls.json');
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--epochs',
      '3',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--tls-cert',
      cert,
      '--tls-key',
      key,
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on wss:\/\/127\.0\.0\.1:(\d+)/);
    // A connect timeout long enough for at least one attempt to fail on its own (the certificate), whatever the load.
    const untrusted = await runCli(['worker', '--connect', `wss://127.0.0.1:${port}`, '--token', TOKEN, '--connect-timeout', '3000']);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/self[- ]signed certificate/);
    const worker = startCli(['worker', '--connect', `wss://127.0.0.1:${port}`, '--token', TOKEN, '--ca', cert]);
    expect((await coordinator.exited()).code, coordinator.stderr()).toBe(0);
    expect((await worker.exited()).code).toBe(0);
    expect(modelHash(out)).toBe(await referenceHash(3));
  });
});

describe('hostile peers before authentication', () => {
  it('turns away every connection beyond --max-pending-handshakes at once, and still trains the reference model', async () => {
    const out = join(directory.path, 'flood.json');
    // The handshake timeout is far beyond the test: the held connections keep their slots however slow the machine is.
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--epochs',
      '5',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--workers',
      '2',
      '--max-pending-handshakes',
      '16',
      '--handshake-timeout',
      '600000',
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    // 16 connections that never authenticate fill every slot (each is registered before its 101 is sent)...
    const holders: RawPeer[] = [];
    for (let i = 0; i < 16; i++) holders.push(await rawUpgrade(Number(port)));
    expect(holders.map((holder) => holder.status)).toEqual(Array(16).fill(101));
    // ...so each of 200 more is turned away at once with 1013 (try again later).
    const flood = await Promise.all(Array.from({ length: 200 }, () => connect(url, () => undefined)));
    expect(flood.filter((close) => close.code === 1013)).toHaveLength(200);
    expect(flood[0]?.reason).toBe('too many pending handshakes');
    // Freed slots let the workers in (one turned away meanwhile retries with backoff).
    for (const holder of holders) holder.socket.destroy();
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    expect((await coordinator.exited(120_000)).code, coordinator.stderr()).toBe(0);
    expect(modelHash(out)).toBe(await referenceHash(5));
  }, 180_000);

  it('closes a connection that never says hello with 1008 after the handshake timeout', async () => {
    const coordinator = startCli(['coordinator', ...FLAGS, '--host', '127.0.0.1', '--port', '0', '--token', TOKEN, '--handshake-timeout', '300']);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const silent = await connect(`ws://127.0.0.1:${port}`, () => undefined);
    expect(silent).toEqual({ code: 1008, reason: 'no hello within the handshake timeout' });
    expect(coordinator.stderr()).toMatch(/no hello within the handshake timeout/);
    process.kill(coordinator.pid, 'SIGKILL');
  });

  it('survives invalid, oversized and garbage frames in the pending, closing and refused states, and on every door', async () => {
    const frames = hostileFrames(2024);
    const slots = frames.length;
    const out = join(directory.path, 'states.json');
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--epochs',
      '3',
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--workers',
      '1',
      '--max-pending-handshakes',
      String(slots),
      '--handshake-timeout',
      '600000',
      '--out',
      out,
    ]);
    const port = Number((await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const assertAlive = (state: string): void => {
      const isAlive = coordinator.child.exitCode === null && coordinator.child.signalCode === null;
      expect(isAlive, `the coordinator died in the ${state} state:\n${coordinator.stderr().slice(-2000)}`).toBe(true);
    };
    /** Runs one phase; a failure carries the coordinator's last words (a crash shows its stack there). */
    const phase = async (state: string, run: () => Promise<unknown>): Promise<void> => {
      try {
        await run();
      } catch (error) {
        throw new Error(`${state} state: ${(error as Error).message}\ncoordinator stderr:\n${coordinator.stderr().slice(-2000)}`);
      }
      assertAlive(state);
    };
    // Each phase uses at most `slots` connections at once, and the server forgets a peer before it
    // closes its TCP connection: so every peer of the first two phases is admitted, not turned away.

    // Pending: admitted, no hello yet, then a hostile frame.
    await phase('pending', () =>
      Promise.all(
        frames.map(async (bytes) => {
          const peer = await rawUpgrade(port);
          expect(peer.status).toBe(101);
          peer.write(bytes);
          // The server saw the fault: a protocol error (1002) or a frame too big (1009).
          expect([1002, 1009]).toContain(await peer.closeFrame());
          peer.socket.end();
          await peer.ended();
        }),
      ),
    );

    // Closing: refused by policy (a text frame is not the protocol), then a hostile frame.
    await phase('closing', () =>
      Promise.all(
        frames.map(async (bytes) => {
          const peer = await rawUpgrade(port);
          peer.write(frame(0x1, Buffer.from('not binary')));
          expect(await peer.closeFrame()).toBe(1008);
          peer.write(bytes);
          peer.socket.end(); // after the bytes: the server reads them before the end
          await peer.ended();
        }),
      ),
    );
    expect(coordinator.stderr().match(/text frames are not part of the protocol/g)).toHaveLength(slots);

    // Refused: every slot held by a peer that never says hello; each further peer is turned away
    // with 1013 and sends its hostile frame at once (the close frame may still be on its way) or
    // after the close frame arrived.
    const holders = await Promise.all(frames.map(() => rawUpgrade(port)));
    for (const waitsForClose of [false, true]) {
      await phase('refused', () =>
        Promise.all(
          frames.map(async (bytes) => {
            const peer = await rawUpgrade(port);
            expect(peer.status).toBe(101);
            if (waitsForClose) expect(await peer.closeFrame()).toBe(1013);
            peer.write(bytes);
            expect(await peer.closeFrame()).toBe(1013);
            peer.socket.end();
            await peer.ended();
          }),
        ),
      );
    }

    // Before the WebSocket exists: a bad key, resets right after the answer or right after the
    // request (the 401 of a monitor upgrade is then written to a reset socket), HTTP garbage.
    expect((await rawUpgrade(port, '/', { 'Sec-WebSocket-Key': 'x' })).status).toBe(400);
    for (const path of ['/', '/monitor', '/monitor?token=wrong']) {
      const peer = await rawUpgrade(port, path);
      peer.socket.resetAndDestroy();
    }
    const sendAndReset = (bytes: string | Buffer): Promise<void> =>
      new Promise<void>((resolve, reject) => {
        const socket = createConnection(port, '127.0.0.1', () => {
          socket.write(bytes);
          socket.resetAndDestroy();
        });
        socket.on('error', reject);
        socket.on('close', () => resolve());
      });
    const upgradeRequest = (path: string): string =>
      `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
    await phase('before the upgrade', () =>
      Promise.all([
        ...Array.from({ length: 20 }, () => sendAndReset(upgradeRequest('/monitor?token=wrong'))),
        ...Array.from({ length: 20 }, () => sendAndReset(upgradeRequest('/'))),
        sendAndReset(Buffer.alloc(70_000, 0x47)),
      ]),
    );
    // Request targets Node's HTTP parser lets through but the URL parser throws on: 400, for a
    // plain request and for an upgrade.
    await phase('unparseable targets', async () => {
      for (const target of ['http://[', 'http://a:b:c', 'http://%zz']) {
        expect((await rawUpgrade(port, target)).status, target).toBe(400);
        expect(await requestStatus(port, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`), target).toBe(400);
      }
    });
    // The monitor door: authenticated monitors that send hostile frames.
    await phase('monitor', () =>
      Promise.all(
        frames.map(async (bytes) => {
          const monitor = await rawUpgrade(port, '/monitor', { authorization: `Bearer ${TOKEN}` });
          expect(monitor.status).toBe(101);
          monitor.write(bytes);
          expect([1002, 1009]).toContain(await monitor.closeFrame());
          monitor.socket.end();
          await monitor.ended();
        }),
      ),
    );
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    // And a real run still completes, with the reference model.
    for (const holder of holders) holder.socket.destroy();
    startCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--token', TOKEN]);
    expect((await coordinator.exited(120_000)).code, coordinator.stderr()).toBe(0);
    expect(modelHash(out)).toBe(await referenceHash(3));
  }, 180_000);
});

describe('hostile input during a real training', () => {
  it('survives a fuzzer sending thousands of malformed, oversized and well-formed-but-wrong messages', async () => {
    // The run needs one worker to start and has only the fuzzer's peers until the end of the
    // fuzz: no step can commit while they are the only workers (each is closed at its first
    // answer), so the fuzz happens during the run whatever the machine's speed.
    const epochs = 3;
    const out = join(directory.path, 'fuzz.json');
    const coordinator = startCli([
      'coordinator',
      ...FLAGS,
      '--epochs',
      String(epochs),
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--token',
      TOKEN,
      '--workers',
      '1',
      '--rejoin-timeout',
      '600000',
      '--out',
      out,
    ]);
    const [, port] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const url = `ws://127.0.0.1:${port}`;
    let random = 2024;
    const next = (n: number): number => {
      random = (Math.imul(random, 1_103_515_245) + 12_345) >>> 0;
      return random % n;
    };
    const validPart = encodeMessage({
      kind: 'part',
      step: 0,
      subtrees: Uint32Array.from([0, 0]),
      sums: new Float64Array(32),
      rows: Uint32Array.from([4]),
    });
    const generators: (() => Buffer | string)[] = [
      () => Buffer.from(Array.from({ length: next(2000) }, () => next(256))), // random bytes
      () => validPart.subarray(0, next(validPart.length)), // truncated
      () => Buffer.alloc(2 * 1024 * 1024, 7), // oversized: beyond maxPayload
      () => 'not binary', // a text frame
      () =>
        encodeMessage({ kind: 'hello', protocol: PROTOCOL_VERSION, token: 'guess', node: process.version, kernel: supportedKernelIds().join(','), cpus: '' }), // wrong token
      () => Buffer.from(encodeMessage({ kind: 'fail', message: 'x' }).map((byte, i) => (i === 3 ? next(256) : byte))), // a flipped byte
    ];
    // 1. Unauthenticated garbage: every connection is closed by the coordinator.
    let garbage = 0;
    for (let round = 0; round < 30; round++) {
      const closes = await Promise.all(
        Array.from({ length: 10 }, () =>
          connect(url, (socket) => {
            for (let i = 0; i < 10; i++) {
              const generate = generators[next(generators.length)] as () => Buffer | string;
              socket.send(generate());
              garbage++;
            }
          }),
        ),
      );
      for (const close of closes) expect([1002, 1008, 1009]).toContain(close.code);
    }
    expect(garbage).toBe(3000);

    // 2. Authenticated peers that join and then send wrong parts: wrong step ids (silently
    // discarded), wrong lengths, negative or wrong row counts, chunks they were not given. The
    // first one starts the run; each one after it is handed the step its predecessor left.
    let wrongSteps = 0;
    const stepsHanded: number[] = [];
    for (let peer = 0; peer < 20; peer++) {
      const fake = startFakeWorker(url, TOKEN, (step, welcome, socket) => {
        stepsHanded.push(step.step);
        const width = welcome.features + 2;
        const chunks = assignedChunks(step, welcome.workerId);
        const part = (fields: Partial<{ step: number; subtrees: Uint32Array; sums: Float64Array; rows: Uint32Array }>): Buffer =>
          encodeMessage({
            kind: 'part',
            step: fields.step ?? step.step,
            subtrees: fields.subtrees ?? leafSubtrees(chunks),
            sums: fields.sums ?? new Float64Array(chunks.length * width),
            rows: fields.rows ?? Uint32Array.from(chunks, () => 1),
          });
        for (let i = 0; i < 100; i++) {
          socket.send(part({ step: step.step + 1 + next(1000) })); // wrong step: discarded, connection kept
          wrongSteps++;
        }
        switch (peer % 4) {
          case 0:
            return part({ sums: new Float64Array(width - 1) }); // wrong vector length
          case 1:
            return part({ subtrees: Uint32Array.from([0, 999]), sums: new Float64Array(width), rows: Uint32Array.of(1) }); // a chunk it was not given
          case 2:
            return encodeMessage({
              kind: 'part',
              step: step.step,
              subtrees: leafSubtrees(chunks),
              sums: new Float64Array(chunks.length * width),
              rows: Int32Array.from(chunks, () => -1) as never,
            }); // negative rows
          default:
            return peer % 8 === 3 ? part({}) : validPart; // wrong row counts, or a replay of another run's part
        }
      });
      const close = await Promise.race([fake.closed, coordinator.exited(120_000).then(({ code }) => ({ code: -1, reason: `the coordinator exited ${code}` }))]);
      expect(close.code, `peer ${peer}: ${close.reason}\n${coordinator.stderr().slice(-2000)}`).toBe(1008);
    }
    expect(wrongSteps).toBe(2000);
    // Every peer was handed step 0: nothing a fuzzer sent was committed.
    expect(stepsHanded).toEqual(Array(20).fill(0));
    const status = (await (await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { step: number };
    expect(status.step).toBe(0);

    // 3. Real workers finish the run: the model is the reference, bit for bit.
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    startCli(['worker', '--connect', url, '--token', TOKEN]);
    const { code } = await coordinator.exited(120_000);
    expect(code, coordinator.stderr()).toBe(0);
    expect(modelHash(out)).toBe(await referenceHash(epochs));
  }, 240_000);
});

/** Sends one raw HTTP request to 127.0.0.1:port; resolves with the answer's status (0 if the connection closed without one). */
function requestStatus(port: number, request: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = createConnection(port, '127.0.0.1', () => socket.write(request));
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${JSON.stringify(request.slice(0, 40))} within 15 s`));
    }, 15_000);
    socket.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(answer);
      if (status === null) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(Number(status[1]));
    });
    socket.on('error', () => undefined); // the close below reports it
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(0);
    });
  });
}
