// `dpt monitor URL`: follows a coordinator's loss stream over its monitor WebSocket. On a TTY a
// live view redrawn at most 10 times a second; with --json one message per line; on a pipe
// without --json one plain line per epoch and per membership change. Reconnects with bounded
// backoff when the coordinator goes away (e.g. restarts) and returns once the run ends.

import { WebSocket } from 'ws';
import { AuthError, ConfigError, CoordinatorLostError, ProtocolError } from '../shared/errors.js';
import type { MonitorMessage } from '../shared/events.js';
import { decodeMonitorMessage } from '../shared/monitor-message.js';
import { MonitorView } from './monitor-view.js';

export interface MonitorOptions {
  /** http(s):// or ws(s):// address of the coordinator (its /monitor path is added when missing). */
  readonly url: string;
  readonly token: string | null;
  readonly isJson: boolean;
  /** Give up when no coordinator could be reached for this long (first connect or reconnect). */
  readonly connectTimeoutMs: number;
  /** PEM CA certificate to trust for wss:// (a self-signed coordinator), or null. */
  readonly ca: Buffer | null;
  readonly out: NodeJS.WriteStream;
  readonly log: (line: string) => void;
}

/** How one connection ended. */
type SessionEnd = { kind: 'ended'; outcome: 'finished' | 'failed'; reason: string | null } | { kind: 'lost'; reason: string; wasConnected: boolean };

const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
/** At most 10 redraws a second. */
const REDRAW_MS = 100;
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Bounds one message: a workers snapshot of many workers is the largest. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** The monitor socket's URL for what the user typed: http→ws, https→wss, /monitor appended to the path. */
export function monitorUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ConfigError(`monitor URL '${input}' is not a valid URL (expected e.g. http://host:8787 or ws://host:8787)`);
  }
  const schemes: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' };
  const scheme = schemes[url.protocol];
  if (scheme === undefined) throw new ConfigError(`monitor URL '${input}': expected http://, https://, ws:// or wss://, got ${url.protocol}//`);
  url.protocol = scheme;
  if (!url.pathname.endsWith('/monitor')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/monitor`;
  return url.toString();
}

/** Follows the stream until the run ends; resolves with its outcome. Throws AuthError or CoordinatorLostError. */
export async function runMonitor(options: MonitorOptions): Promise<{ outcome: 'finished' | 'failed'; reason: string | null }> {
  const url = monitorUrl(options.url);
  const display = displayFor(options, redact(url));
  let giveUpAt = Date.now() + options.connectTimeoutMs;
  let backoffMs = FIRST_BACKOFF_MS;
  try {
    for (;;) {
      display.status('connecting');
      const end = await followOnce(url, options.token, options.ca, display);
      if (end.kind === 'ended') return { outcome: end.outcome, reason: end.reason };
      if (end.wasConnected) {
        giveUpAt = Date.now() + options.connectTimeoutMs;
        backoffMs = FIRST_BACKOFF_MS;
      }
      if (Date.now() >= giveUpAt) {
        throw new CoordinatorLostError(`cannot reach the coordinator at ${redact(url)} (${end.reason}) for ${options.connectTimeoutMs} ms`);
      }
      display.status(`reconnecting (${end.reason})`);
      await new Promise((resolve) => setTimeout(resolve, backoffMs));
      backoffMs = Math.min(MAX_BACKOFF_MS, backoffMs * 2);
    }
  } finally {
    display.close();
  }
}

/** Where messages go: the live view, JSON lines, or plain lines. */
interface Display {
  status(text: string): void;
  message(message: MonitorMessage, text: string): void;
  close(): void;
}

/** One connection: resolves when it closes (run over, or lost); rejects on a refused token. */
function followOnce(url: string, token: string | null, ca: Buffer | null, display: Display): Promise<SessionEnd> {
  return new Promise<SessionEnd>((resolve, reject) => {
    const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
    const socket = new WebSocket(url, {
      headers,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE_BYTES,
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      ...(ca === null ? {} : { ca }),
    });
    let wasConnected = false;
    let ended: SessionEnd | null = null;
    let lastError = 'connection closed';
    socket.on('unexpected-response', (_request, response) => {
      if (response.statusCode === 401) {
        ended = { kind: 'lost', reason: 'refused', wasConnected: false };
        socket.terminate();
        reject(new AuthError(`the coordinator at ${redact(url)} refused the monitor token (HTTP 401)`));
        return;
      }
      // 503: --max-monitors are connected (or the run just ended); retried with the backoff like a lost connection.
      lastError = response.statusCode === 503 ? 'HTTP 503: the coordinator serves no more monitors now (--max-monitors)' : `HTTP ${response.statusCode ?? '?'}`;
      socket.terminate();
    });
    socket.on('open', () => {
      wasConnected = true;
      display.status('live');
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      let message: MonitorMessage | null;
      try {
        message = decodeMonitorMessage(text);
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        lastError = error.message;
        socket.terminate();
        return;
      }
      if (message === null) return; // a kind from a newer coordinator
      display.message(message, text);
      if (message.type === 'run' && message.event === 'end')
        ended = { kind: 'ended', outcome: message.outcome === 'finished' ? 'finished' : 'failed', reason: message.reason };
    });
    socket.on('error', (error) => {
      lastError = error.message;
    });
    socket.on('close', () => resolve(ended ?? { kind: 'lost', reason: lastError, wasConnected }));
  });
}

function displayFor(options: MonitorOptions, source: string): Display {
  if (options.isJson) {
    return {
      status: () => undefined,
      message: (_message, text) => options.out.write(`${text}\n`),
      close: () => undefined,
    };
  }
  if (options.out.isTTY === true) return liveDisplay(options.out, source);
  return plainDisplay(options.out, options.log);
}

/** The live view: redrawn in place on a timer, at most every REDRAW_MS, only when something changed. */
function liveDisplay(out: NodeJS.WriteStream, source: string): Display {
  const view = new MonitorView(source);
  let drawnLines = 0;
  let isDirty = true;
  const draw = (): void => {
    if (!isDirty) return;
    isDirty = false;
    const lines = view.render(Date.now(), Math.max(20, (out.columns ?? 100) - 1));
    // Back to the top of the previous frame, clear below, draw the new one.
    out.write(`${drawnLines > 0 ? `\x1b[${drawnLines}F` : ''}\x1b[J${lines.join('\n')}\n`);
    drawnLines = lines.length;
  };
  // "Last seen" ages even without messages: redraw at least once a second.
  const timer = setInterval(draw, REDRAW_MS);
  const ager = setInterval(() => {
    isDirty = true;
  }, 1000);
  out.write('\x1b[?25l');
  const showCursor = (): void => {
    out.write('\x1b[?25h');
  };
  process.once('exit', showCursor);
  return {
    status: (text) => {
      view.setStatus(text);
      isDirty = true;
    },
    message: (message) => {
      view.handle(message);
      isDirty = true;
    },
    close: () => {
      clearInterval(timer);
      clearInterval(ager);
      isDirty = true;
      draw();
      showCursor();
      process.off('exit', showCursor);
    },
  };
}

/** On a pipe without --json: a line per epoch, per membership change and per run start and end. */
function plainDisplay(out: NodeJS.WriteStream, log: (line: string) => void): Display {
  let lastStatus = '';
  return {
    status: (text) => {
      if (text !== lastStatus && text !== 'live' && text !== 'connecting') log(text);
      lastStatus = text;
    },
    message: (message) => {
      switch (message.type) {
        case 'eval': {
          const validation = message.valLoss === null ? '' : `  val loss ${message.valLoss.toFixed(4)} acc ${(message.valAccuracy ?? Number.NaN).toFixed(4)}`;
          out.write(`epoch ${message.epoch + 1}  train loss ${message.trainLoss.toFixed(4)} acc ${message.trainAccuracy.toFixed(4)}${validation}\n`);
          return;
        }
        case 'worker':
          out.write(
            `worker ${message.workerId} ${message.event} (${message.event === 'joined' ? message.address : message.reason}); ${message.workers} connected\n`,
          );
          return;
        case 'run':
          if (message.event === 'start') out.write(`run started: ${message.totalSteps} steps over ${message.epochs} epochs\n`);
          else out.write(`run ${message.outcome} after ${message.steps} steps${message.reason === null ? '' : `: ${message.reason}`}\n`);
          return;
        case 'dropped':
          out.write(`${message.count} event(s) not received: this monitor fell behind\n`);
          return;
        default:
          return;
      }
    },
    close: () => undefined,
  };
}

/** The URL without a token in its query, for messages. */
function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has('token')) parsed.searchParams.set('token', '…');
  return parsed.toString();
}
