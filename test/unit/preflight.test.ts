// The coordinator's pre-flight checks: a bind failure becomes one line naming --host or --port,
// whether the probe or the real bind meets it; anything else is left alone.

import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkListenAddress, listenError } from '../../cli/preflight.js';
import { ConfigError } from '../../shared/errors.js';

let taken: Server;
let takenPort = 0;
beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  takenPort = (taken.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => taken.close(() => resolve())));

/** The error a real listen on host:port fails with. */
async function listenFailure(host: string, port: number): Promise<unknown> {
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      if (host.includes('/')) server.listen(host, resolve);
      else server.listen(port, host, resolve);
    });
  } catch (error) {
    return error;
  } finally {
    if (server.listening) server.close();
  }
  throw new Error(`listening on ${host}:${port} succeeded`);
}

describe('listenError', () => {
  it('names --port for a port in use and --host for an address of another machine', async () => {
    const inUse = listenError(await listenFailure('127.0.0.1', takenPort), '127.0.0.1', takenPort);
    expect(inUse).toBeInstanceOf(ConfigError);
    expect(inUse?.message).toBe(`--port ${takenPort}: cannot listen on 127.0.0.1:${takenPort}: the port is already in use (EADDRINUSE)`);
    const foreign = listenError(await listenFailure('203.0.113.1', 0), '203.0.113.1', 0);
    expect(foreign?.message).toBe('--host 203.0.113.1: cannot listen on 203.0.113.1:0: not an address of this machine (EADDRNOTAVAIL)');
  });

  it('names TMPDIR for the Unix socket of the local workers', async () => {
    const failure = listenError(await listenFailure('/nonexistent-dpt-folder/dpt.sock', 0), '/nonexistent-dpt-folder/dpt.sock', 0);
    expect(failure?.message).toMatch(/^cannot listen on the local workers' socket \/nonexistent-dpt-folder\/dpt\.sock: .*\(E[A-Z]+\); set TMPDIR/);
  });

  it('leaves other errors to the caller', () => {
    expect(listenError(new Error('boom'), '127.0.0.1', 1)).toBeNull();
    expect(listenError(Object.assign(new Error('x'), { code: 'ENOENT', syscall: 'open' }), '127.0.0.1', 1)).toBeNull();
  });
});

describe('checkListenAddress', () => {
  it('refuses a port in use and accepts a free one (port 0)', async () => {
    await expect(checkListenAddress('127.0.0.1', takenPort)).rejects.toThrow(/--port \d+: .*EADDRINUSE/);
    await expect(checkListenAddress('127.0.0.1', 0)).resolves.toBeUndefined();
  });
});
