// The client side of a WebSocket heartbeat (workers and relays toward their coordinator): ping
// every `intervalMs`; a link that showed no sign of life (a pong or any message) since the
// previous tick is dead, and is terminated so that the close handler runs (reconnect or give
// up) instead of waiting on TCP.

import { WebSocket } from 'ws';

export interface Heartbeat {
  /** A sign of life from the peer (call it for every message; pongs count by themselves). */
  beat(): void;
  /** Stops pinging (the session ended). */
  stop(): void;
}

export function watchHeartbeat(socket: WebSocket, intervalMs: number, log: (line: string) => void): Heartbeat {
  let isAlive = true;
  socket.on('pong', () => {
    isAlive = true;
  });
  const timer = setInterval(() => {
    if (!isAlive) {
      log(`no heartbeat from the coordinator for ${intervalMs} ms`);
      socket.terminate();
      return;
    }
    isAlive = false;
    if (socket.readyState === WebSocket.OPEN) socket.ping();
  }, intervalMs);
  return {
    beat: () => {
      isAlive = true;
    },
    stop: () => clearInterval(timer),
  };
}
