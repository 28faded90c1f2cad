// Every wait of a worker has a deadline (issue #10 item 14): a server that accepts the WebSocket
// but never welcomes, one that accepts TCP but never finishes the upgrade, and one that never
// answers a close. Each peer here is a raw server in the test on 127.0.0.1, port 0.

import { createHash } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { killAll, startCli } from '../helpers/cli.js';

const servers: { close: () => void }[] = [];
const sockets: Socket[] = [];

afterAll(() => {
  killAll();
  for (const socket of sockets) socket.destroy();
  for (const server of servers) server.close();
});

function listening(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

/** A TCP server that runs `onConnection` for each connection and keeps every socket open. */
async function rawServer(onConnection: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined); // the worker may cut it: nothing to report
    onConnection(socket);
  });
  servers.push(server);
  return listening(server);
}

describe('a worker', () => {
  it('gives up at --connect-timeout on a WebSocket server that accepts but never welcomes it', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    servers.push(wss);
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    let connections = 0;
    wss.on('connection', (socket) => {
      connections++;
      socket.on('error', () => undefined);
    }); // and never sends anything (ws still answers pings: the heartbeat alone never fires)
    const address = wss.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const worker = startCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--connect-timeout', '1000']);
    const { code } = await worker.exited(30_000);
    expect(connections).toBeGreaterThan(0); // it did connect: the wait was for the welcome
    expect(code).toBe(1);
    expect(worker.stderr()).toMatch(/no welcome from it before the --connect-timeout of 1000 ms ran out/);
    expect(worker.stderr()).toMatch(/DPT_COORDINATOR_LOST/);
    expect(worker.stderr().trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('gives up at --connect-timeout on a server that accepts TCP but never answers the upgrade', async () => {
    let requests = 0;
    const port = await rawServer((socket) => {
      socket.once('data', () => {
        requests++;
      });
    });
    // A heartbeat longer than the test: only the connect deadline can end the wait.
    const worker = startCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--connect-timeout', '1000', '--heartbeat', '600000']);
    const { code } = await worker.exited(30_000);
    expect(requests).toBeGreaterThan(0);
    expect(code).toBe(1);
    expect(worker.stderr()).toMatch(/cannot reach the coordinator at ws:\/\/127\.0\.0\.1:\d+ \(.*\) for 1000 ms/);
  }, 60_000);

  it('stops on SIGTERM though the server never answers its close', async () => {
    // Completes the WebSocket upgrade by hand, then reads nothing and answers nothing.
    let resolveHello: () => void = () => undefined;
    const hello = new Promise<void>((resolve) => {
      resolveHello = resolve;
    });
    const port = await rawServer((socket) => {
      socket.once('data', (request: Buffer) => {
        const key = /sec-websocket-key: *(\S+)/i.exec(request.toString())?.[1] ?? '';
        const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        // The worker's hello is the first frame after the upgrade: the session is open.
        socket.once('data', () => resolveHello());
      });
    });
    const worker = startCli(['worker', '--connect', `ws://127.0.0.1:${port}`, '--connect-timeout', '600000', '--heartbeat', '600000']);
    await Promise.race([hello, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no hello frame within 30 s')), 30_000).unref())]);
    process.kill(worker.pid, 'SIGTERM');
    const { code } = await worker.exited(15_000);
    expect(code).toBe(0);
  }, 60_000);
});
