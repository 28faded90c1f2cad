// A TCP relay on 127.0.0.1 (port 0) that forwards each connection to the coordinator of the
// moment: workers keep one address while the coordinator behind it is killed and restarted on a
// fresh port 0, so no test ever rebinds a port it has just released.

import { connect, createServer, type Socket } from 'node:net';

export interface TcpRelay {
  readonly port: number;
  readonly url: string;
  /** Where new connections go (null: refuse them, as a port nobody listens on would). */
  setTarget(port: number | null): void;
  close(): Promise<void>;
}

export async function startRelay(): Promise<TcpRelay> {
  let target: number | null = null;
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const server = createServer((client) => {
    track(client);
    if (target === null) {
      client.destroy();
      return;
    }
    const upstream = connect(target, '127.0.0.1');
    track(upstream);
    // Either side ending ends both: a killed coordinator is a lost connection for the worker.
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the relay has no port');
  return {
    port: address.port,
    url: `ws://127.0.0.1:${address.port}`,
    setTarget: (port) => {
      target = port;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
