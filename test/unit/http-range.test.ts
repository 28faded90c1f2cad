// RangeClient against deliberately broken HTTP servers on real sockets: a body shorter than the
// range, a connection cut mid-body, an answer for other bytes, a file that changes between two
// requests. Each is one DatasetError naming the URL and what went wrong.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DatasetError } from '../../shared/errors.js';
import { RangeClient } from '../../worker/http-range.js';

let server: Server | null = null;
let client: RangeClient | null = null;

afterEach(async () => {
  client?.close();
  client = null;
  if (server !== null) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    server = null;
  }
});

async function serve(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<RangeClient> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/file.dpt?secret=1`);
  client = new RangeClient({ url, token: null, ca: null, socketPath: null });
  return client;
}

async function failure(fetching: Promise<unknown>): Promise<DatasetError> {
  const error = await fetching.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(DatasetError);
  return error as DatasetError;
}

describe('RangeClient', () => {
  it('returns exactly the bytes of a 206 for the range asked, and sends Range and no credentials', async () => {
    const seen: (string | undefined)[] = [];
    const range = await serve((request, response) => {
      seen.push(request.headers.range, request.headers.authorization);
      response.writeHead(206, { 'content-range': 'bytes 10-13/100', 'content-length': 4 });
      response.end(Buffer.from([1, 2, 3, 4]));
    });
    expect([...(await range.fetch(10, 14))]).toEqual([1, 2, 3, 4]);
    expect(seen).toEqual(['bytes=10-13', undefined]);
    expect(range.bytes).toBe(4);
  });

  it('reports a short read, naming the URL without its query', async () => {
    const range = await serve((_request, response) => {
      response.writeHead(206, { 'content-range': 'bytes 0-99/1000', 'content-length': 40 });
      response.end(Buffer.alloc(40));
    });
    const error = await failure(range.fetch(0, 100));
    expect(error.message).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/file\.dpt: bytes 0 to 99: short read: the body ended after 40 of 100 bytes$/);
  });

  it('reports a connection cut mid-body after trying once more', async () => {
    let cuts = 0;
    const range = await serve((_request, response) => {
      cuts++;
      response.writeHead(206, { 'content-range': 'bytes 0-99/1000', 'content-length': 100 });
      response.write(Buffer.alloc(30));
      setImmediate(() => response.socket?.destroy());
    });
    const error = await failure(range.fetch(0, 100));
    expect(error.message).toMatch(/bytes 0 to 99: the connection broke after 30 of 100 bytes/);
    expect(cuts).toBe(2); // a cut is the network's fault: tried once more
  });

  it('refuses an answer for other bytes than asked', async () => {
    const range = await serve((_request, response) => {
      response.writeHead(206, { 'content-range': 'bytes 0-9/1000', 'content-length': 10 });
      response.end(Buffer.alloc(10));
    });
    expect((await failure(range.fetch(50, 60))).message).toMatch(/bytes 50 to 59: the server sent bytes 0 to 9 of 1000/);
  });

  it('notices a file that changed on the server between two requests (ETag)', async () => {
    let version = 0;
    const range = await serve((_request, response) => {
      version++;
      response.writeHead(206, { 'content-range': 'bytes 0-3/1000', 'content-length': 4, etag: `"v${version}"` });
      response.end(Buffer.alloc(4));
    });
    await range.fetch(0, 4);
    expect((await failure(range.fetch(0, 4))).message).toMatch(/the file changed on the server while it was being read \(size 1000 → 1000, ETag "v1" → "v2"\)/);
  });

  it('reports a refused connection as the request failing', async () => {
    // A port that was just free: nothing listens there.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    client = new RangeClient({ url: new URL(`http://127.0.0.1:${port}/x.dpt`), token: 'secret', ca: null, socketPath: null });
    expect((await failure(client.fetch(0, 4))).message).toMatch(/x\.dpt: bytes 0 to 3: the request failed \(ECONNREFUSED\)/);
  });
});
