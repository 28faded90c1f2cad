// One HTTP Range request for bytes of a remote .dpt file (the coordinator's GET /data, or any
// server with Range support): exactly the bytes asked for, or a DatasetError that names the URL
// and what went wrong (HTTP status, no Range support, a short body, the file changed). Nothing
// here knows the .dpt format; worker/remote-data.ts checks what arrives.

import { type Agent as HttpAgent, request as httpRequest, type IncomingMessage, Agent as PlainAgent } from 'node:http';
import { request as httpsRequest, Agent as TlsAgent } from 'node:https';
import { DatasetError } from '../shared/errors.js';

/** Where a remote .dpt file lives and how to ask for it. */
export interface HttpSource {
  /** http: or https: URL of the file. */
  readonly url: URL;
  /** Sent as `Authorization: Bearer` (the coordinator's /data); null: no credentials (any other server). */
  readonly token: string | null;
  /** Extra CA certificate(s) to trust for https (PEM), or null for the system's. */
  readonly ca: Buffer | null;
  /** HTTP over this Unix socket instead of TCP (a worker connected by ws+unix), or null. */
  readonly socketPath: string | null;
}

/** A source's connection pool and what it has seen; close() when done. */
export class RangeClient {
  readonly source: HttpSource;
  /** Requests sent and body bytes received so far. */
  requests = 0;
  bytes = 0;
  /** The file's size and ETag as the first answer gave them: a later answer that differs means the file changed. */
  private size: number | null = null;
  private etag: string | null = null;
  private readonly agent: HttpAgent;
  private isClosed = false;

  constructor(source: HttpSource) {
    this.source = source;
    const isTls = source.url.protocol === 'https:';
    // Keep-alive: a worker asks for many ranges; a few sockets in parallel at most.
    const options = { keepAlive: true, maxSockets: MAX_SOCKETS };
    this.agent = isTls ? new TlsAgent({ ...options, ...(source.ca === null ? {} : { ca: source.ca }) }) : new PlainAgent(options);
  }

  /** Where messages say the bytes came from (the URL without its query, which may hold a token). */
  get where(): string {
    const url = new URL(this.source.url.href);
    url.search = '';
    return url.href;
  }

  /**
   * Bytes [start, end) of the file (end exclusive, start < end). Throws DatasetError naming the
   * URL: HTTP errors, a 200 (no Range support), a 416, a Content-Range other than asked, a body
   * shorter or longer than the range, a file whose size or ETag changed since the first answer.
   * `into`: where the bytes go (at least end − start bytes; its first end − start are returned),
   * so a caller can reuse buffers; default: a new one.
   */
  async fetch(start: number, end: number, into?: Buffer): Promise<Buffer> {
    for (let attempt = 1; ; attempt++) {
      if (this.isClosed) throw this.problem(start, end, 'the reader was closed');
      try {
        return await this.fetchOnce(start, end, into ?? Buffer.allocUnsafe(end - start));
      } catch (error) {
        // A reset socket (keep-alive races, a restarted proxy) is worth one more try; an answer is not.
        if ((error instanceof DatasetError && !RETRYABLE.has(error)) || attempt >= NETWORK_ATTEMPTS) throw this.fail(start, end, error);
      }
    }
  }

  /** Ends every connection; requests under way fail, and none is sent again. */
  close(): void {
    this.isClosed = true;
    this.agent.destroy();
  }

  private fail(start: number, end: number, error: unknown): DatasetError {
    if (error instanceof DatasetError) return error;
    const code = (error as NodeJS.ErrnoException).code;
    return this.problem(start, end, `the request failed (${code ?? (error as Error).message})`);
  }

  private problem(start: number, end: number, what: string): DatasetError {
    return new DatasetError(this.where, undefined, undefined, `bytes ${start} to ${end - 1}: ${what}`);
  }

  private fetchOnce(start: number, end: number, into: Buffer): Promise<Buffer> {
    const { url, token, socketPath } = this.source;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<Buffer>((resolve, reject) => {
      this.requests++;
      const request = send(url, {
        method: 'GET',
        agent: this.agent,
        ...(socketPath === null ? {} : { socketPath }),
        headers: {
          range: `bytes=${start}-${end - 1}`,
          // The bytes as stored: a compressed body would not be the range asked for.
          'accept-encoding': 'identity',
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
        },
        timeout: IDLE_TIMEOUT_MS,
      });
      request.on('timeout', () => request.destroy(this.problem(start, end, `no data for ${IDLE_TIMEOUT_MS / 1000} s`)));
      request.on('error', reject);
      request.on('response', (response) => {
        const refusal = this.checkResponse(response, start, end);
        if (refusal !== null) {
          response.resume(); // drain (a small error body), or stop reading a whole file sent as 200
          request.destroy();
          reject(refusal);
          return;
        }
        const body = into.subarray(0, end - start);
        let filled = 0;
        response.on('data', (chunk: Buffer) => {
          if (filled + chunk.length > body.length) {
            request.destroy(this.problem(start, end, `the server sent more than the ${body.length} bytes asked for`));
            return;
          }
          chunk.copy(body, filled);
          filled += chunk.length;
          this.bytes += chunk.length;
        });
        response.on('end', () => {
          if (filled === body.length) resolve(body);
          else reject(this.problem(start, end, `short read: the body ended after ${filled} of ${body.length} bytes`));
        });
        // A connection cut mid-body is the network's fault: worth the retry a refused connection gets.
        const cut = (detail: string): void => {
          const error = this.problem(start, end, `the connection broke after ${filled} of ${body.length} bytes${detail}`);
          RETRYABLE.add(error);
          reject(error);
        };
        response.on('error', (error: NodeJS.ErrnoException) => cut(` (${error.code ?? error.message})`));
        response.on('close', () => {
          if (!response.complete) cut('');
        });
      });
      request.end();
    });
  }

  /** Null when `response` is the 206 for [start, end) of the same file as before; else the error to report. */
  private checkResponse(response: IncomingMessage, start: number, end: number): DatasetError | null {
    const status = response.statusCode ?? 0;
    if (status === 200) {
      return this.problem(
        start,
        end,
        'the server answered 200 with the whole file: it does not support HTTP Range requests, which dpt needs to read a remote .dpt file',
      );
    }
    if (status === 416) {
      const total = /\/(\d+)$/.exec(response.headers['content-range'] ?? '')?.[1];
      return this.problem(
        start,
        end,
        `HTTP 416 Range Not Satisfiable: the file ends before these bytes${total === undefined ? '' : ` (it has ${total} bytes)`}`,
      );
    }
    if (status === 401 || status === 403) {
      return this.problem(
        start,
        end,
        `HTTP ${status} ${response.statusMessage ?? ''}: ${this.source.token === null ? 'the server wants credentials' : "the token was refused (is it the workers' token?)"}`,
      );
    }
    if (status !== 206) return this.problem(start, end, `HTTP ${status} ${response.statusMessage ?? ''} (expected 206 Partial Content)`);
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers['content-range'] ?? '');
    if (range === null) return this.problem(start, end, `a 206 answer without a valid Content-Range (${response.headers['content-range'] ?? 'none'})`);
    const [first, last, total] = [Number(range[1]), Number(range[2]), Number(range[3])];
    if (first !== start || last !== end - 1) {
      return this.problem(start, end, `the server sent bytes ${first} to ${last} of ${total}${last < end - 1 ? ' (the file is shorter than that)' : ''}`);
    }
    const etag = response.headers.etag ?? null;
    if (this.size === null) {
      this.size = total;
      this.etag = etag;
    } else if (total !== this.size || (etag !== null && this.etag !== null && etag !== this.etag)) {
      return this.problem(start, end, `the file changed on the server while it was being read (size ${this.size} → ${total}, ETag ${this.etag} → ${etag})`);
    }
    return null;
  }
}

/** Failures of the network rather than of the answer: fetch() sends such a request once more. */
const RETRYABLE = new WeakSet<Error>();

/** Parallel requests per source at most. */
const MAX_SOCKETS = 4;
/** A request with no bytes moving for this long has failed. */
const IDLE_TIMEOUT_MS = 30_000;
/** A request that fails on the network (not with an answer) is sent at most this many times. */
const NETWORK_ATTEMPTS = 2;
