// GET /data on a relay's port: the coordinator's /data, passed through (issue #11 item 4 behind
// item 3). A worker without the data file fetches it from where it connected, and it sends its
// token only to that origin, so a relay must answer /data itself. It checks the workers' token,
// forwards the request's Range and If-Range to the coordinator with its own token, and streams the
// answer back unchanged (status, length, range, ETag): the worker checks every block against the
// run's CRC table as it would from the coordinator, so the relay adds nothing to trust.

import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createTokenCheck, requestToken } from '../coordinator/auth.js';
import type { HttpRoutes } from '../coordinator/server.js';

/** The path the coordinator's data route answers on (coordinator/data-route.ts DATA_PATH). */
const DATA_PATH = '/data';
/** Request headers passed to the coordinator; the rest (the worker's token among them) are not. */
const FORWARDED_REQUEST = ['range', 'if-range'] as const;
/** Response headers passed back to the worker. */
const FORWARDED_RESPONSE = ['content-length', 'content-range', 'accept-ranges', 'etag', 'content-type', 'cache-control', 'www-authenticate'] as const;

export interface DataProxyOptions {
  /** The coordinator's ws(s):// URL the relay connects to. */
  readonly coordinatorUrl: string;
  /** The token: required of workers here, presented to the coordinator there. */
  readonly token: string | null;
  readonly ca: Buffer | null;
  readonly log: (line: string) => void;
}

/** The http(s) URL of the coordinator's /data, from its ws(s) URL. */
export function coordinatorDataUrl(coordinatorUrl: string): URL {
  const url = new URL(coordinatorUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  url.pathname = DATA_PATH;
  url.search = '';
  return url;
}

export function createDataProxy(options: DataProxyOptions): HttpRoutes {
  const tokenMatches = createTokenCheck(options.token);
  const target = coordinatorDataUrl(options.coordinatorUrl);
  let announced = false;
  const serve = (request: IncomingMessage, response: ServerResponse, url: URL): void => {
    if (!tokenMatches(requestToken(request, url))) {
      response.writeHead(401, { 'content-type': 'text/plain; charset=utf-8', 'www-authenticate': 'Bearer' });
      response.end("missing or wrong token: /data needs the workers' token (Authorization: Bearer TOKEN)\n");
      return;
    }
    if (!announced) {
      announced = true;
      options.log(`passing ${DATA_PATH} through to the coordinator at ${target.origin}`);
    }
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_REQUEST) {
      const value = request.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    if (options.token !== null) headers.authorization = `Bearer ${options.token}`;
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const upstream = send(target, { method: request.method, headers, ...(options.ca === null ? {} : { ca: options.ca }) }, (answer) => {
      const back: Record<string, string> = {};
      for (const name of FORWARDED_RESPONSE) {
        const value = answer.headers[name];
        if (typeof value === 'string') back[name] = value;
      }
      response.writeHead(answer.statusCode ?? 502, back);
      answer.pipe(response);
      // A cut upstream mid-body must cut the worker's body too: a short body fails its length check.
      answer.on('error', () => response.destroy());
      answer.on('aborted', () => response.destroy());
    });
    upstream.on('error', (error) => {
      if (response.headersSent) {
        response.destroy();
        return;
      }
      response.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
      response.end(`the relay cannot reach the coordinator's ${DATA_PATH} at ${target.origin} (${error.message})\n`);
    });
    response.on('close', () => upstream.destroy());
    upstream.end();
  };
  return {
    request(request, response, url) {
      if (url.pathname !== DATA_PATH || (request.method !== 'GET' && request.method !== 'HEAD')) return false;
      serve(request, response, url);
      return true;
    },
    upgrade: () => false,
  };
}
