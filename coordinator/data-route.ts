// GET /data on the coordinator's port: the one .dpt file the workers read (for a CSV its converted
// cache entry), for workers that have no copy (issue #11 item 4). Guarded by the workers' token
// (a monitor token cannot read the data), served by HTTP Range (one range: 206, or 416 past the
// end), streamed from the file (never held in memory), and nothing else: no path is taken from
// the request, so there is no other file to reach. The ETag is the data's identity.

import { closeSync, createReadStream, fstatSync, openSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createTokenCheck, requestToken } from './auth.js';
import type { HttpRoutes } from './server.js';

/** The path the route answers on; the welcome announces it to workers. */
export const DATA_PATH = '/data';

export interface DataRouteOptions {
  /** The .dpt file to serve (DataFile.binaryPath). */
  readonly binaryPath: string;
  /** Its identity (DataFile.identity): the ETag, so a client can tell it is the run's data. */
  readonly identity: string;
  /** The workers' token in force (null: none, a loopback-only coordinator). */
  readonly token: string | null;
  readonly log: (line: string) => void;
}

/** What the route has served, for the coordinator's closing log line and tests. */
export interface DataServed {
  readonly requests: number;
  /** Bytes of the file sent in response bodies (complete or not). */
  readonly bytes: number;
}

/** A parsed Range header: one satisfiable range, none (serve the whole file), or unsatisfiable. */
export type RangeRequest = { kind: 'whole' } | { kind: 'range'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * The byte range `header` asks for in a file of `size` bytes, `end` inclusive as HTTP writes it.
 * One range only: a list of ranges, or a header this parser does not read, is served whole, as
 * RFC 9110 lets a server ignore Range. A range starting at or past the end is unsatisfiable.
 */
export function parseRange(header: string | undefined, size: number): RangeRequest {
  if (header === undefined) return { kind: 'whole' };
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return { kind: 'whole' };
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'whole' };
  if (first === '') {
    // A suffix range: the last N bytes.
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'range', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (!Number.isSafeInteger(start) || start >= size) return { kind: 'unsatisfiable' };
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return { kind: 'whole' }; // syntactically invalid (last < first): ignored, per RFC 9110
  return { kind: 'range', start, end };
}

/** The /data route; `served` counts what went out. */
export function createDataRoute(options: DataRouteOptions): HttpRoutes & { served(): DataServed } {
  const tokenMatches = createTokenCheck(options.token);
  const etag = `"${options.identity}"`;
  let requests = 0;
  let bytes = 0;
  const addresses = new Set<string>();
  const reply = (response: ServerResponse, code: number, text: string, headers: Record<string, string> = {}): void => {
    response.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
    response.end(`${text}\n`);
  };
  const serve = (request: IncomingMessage, response: ServerResponse, url: URL): void => {
    if (!tokenMatches(requestToken(request, url))) {
      reply(response, 401, "missing or wrong token: /data needs the workers' token (Authorization: Bearer TOKEN)", { 'www-authenticate': 'Bearer' });
      return;
    }
    let fd: number;
    let size: number;
    try {
      fd = openSync(options.binaryPath, 'r');
      size = fstatSync(fd).size;
    } catch (error) {
      reply(response, 500, `cannot read the data file (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      return;
    }
    requests++;
    const address = request.socket.remoteAddress ?? 'local socket';
    if (!addresses.has(address)) {
      addresses.add(address);
      options.log(`serving the data file ${options.binaryPath} to ${address} over ${DATA_PATH}`);
    }
    // If-Range with another identity: the client's earlier bytes are of another file; send it whole.
    const ifRange = request.headers['if-range'];
    const range = ifRange !== undefined && ifRange !== etag ? ({ kind: 'whole' } as const) : parseRange(request.headers.range, size);
    const common = { 'accept-ranges': 'bytes', etag, 'cache-control': 'no-store', 'content-type': 'application/octet-stream' };
    if (range.kind === 'unsatisfiable') {
      closeSync(fd);
      response.writeHead(416, { ...common, 'content-range': `bytes */${size}`, 'content-length': 0 });
      response.end();
      return;
    }
    const start = range.kind === 'range' ? range.start : 0;
    const end = range.kind === 'range' ? range.end : size - 1;
    const length = end - start + 1;
    response.writeHead(range.kind === 'range' ? 206 : 200, {
      ...common,
      'content-length': length,
      ...(range.kind === 'range' ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
    });
    if (request.method === 'HEAD' || length === 0) {
      closeSync(fd);
      response.end();
      return;
    }
    const stream = createReadStream('', { fd, start, end, autoClose: true });
    stream.on('data', (chunk) => {
      bytes += chunk.length;
    });
    // A read error mid-body cannot change the status line any more: cut the connection, so the
    // client sees a short body (its length check fails) rather than a complete-looking one.
    stream.on('error', () => response.destroy());
    response.on('close', () => stream.destroy());
    stream.pipe(response);
  };
  return {
    request: (request, response, url) => {
      if (url.pathname !== DATA_PATH) return false;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        reply(response, 405, 'only GET and HEAD are served on /data', { allow: 'GET, HEAD' });
        return true;
      }
      serve(request, response, url);
      return true;
    },
    upgrade: () => false,
    served: () => ({ requests, bytes }),
  };
}

/** Routes tried in order: the first that handles a request or an upgrade wins. */
export function chainRoutes(...routes: readonly HttpRoutes[]): HttpRoutes {
  return {
    request: (request, response, url) => routes.some((route) => route.request(request, response, url)),
    upgrade: (request, socket, head, url) => routes.some((route) => route.upgrade(request, socket, head, url)),
  };
}
