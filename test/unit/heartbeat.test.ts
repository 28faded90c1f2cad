// The client heartbeat (shared/heartbeat.ts) over real sockets on 127.0.0.1: a peer that stops
// answering pings is cut; one that keeps sending messages is kept even without pongs.

import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { watchHeartbeat } from '../../shared/heartbeat.js';

const servers: WebSocketServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) {
    for (const client of server.clients) client.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A server that never answers pings (autoPong off); `chatty` sends a message every 5 ms instead. */
async function silentServer(chatty: boolean): Promise<string> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, autoPong: false });
  servers.push(server);
  server.on('connection', (socket) => {
    if (!chatty) return;
    const timer = setInterval(() => socket.send('tick'), 5);
    socket.on('close', () => clearInterval(timer));
  });
  await once(server, 'listening');
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('watchHeartbeat', () => {
  it('terminates a link whose peer answers no ping, and says so', async () => {
    const socket = new WebSocket(await silentServer(false));
    await once(socket, 'open');
    const lines: string[] = [];
    const heartbeat = watchHeartbeat(socket, 20, (line) => lines.push(line));
    const closed = once(socket, 'close');
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('never cut')), 10_000))]);
    heartbeat.stop();
    expect(lines).toEqual(['no heartbeat from the coordinator for 20 ms']);
  });

  it('keeps a link whose peer sends messages, pongs or not, and stops pinging when stopped', async () => {
    const socket = new WebSocket(await silentServer(true));
    await once(socket, 'open');
    const lines: string[] = [];
    const heartbeat = watchHeartbeat(socket, 100, (line) => lines.push(line));
    let messages = 0;
    socket.on('message', () => {
      messages++;
      heartbeat.beat();
    });
    // 120 messages 5 ms apart span several heartbeat intervals of 100 ms (observed, not timed).
    for (let round = 0; round < 2000 && messages < 120; round++) await new Promise((resolve) => setTimeout(resolve, 5));
    heartbeat.stop();
    expect(messages).toBeGreaterThanOrEqual(120);
    expect(lines).toEqual([]);
    expect(socket.readyState).toBe(WebSocket.OPEN);
    socket.close();
  });
});
