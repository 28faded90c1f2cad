// Test clients of the coordinator's monitoring surface: a WebSocket monitor that records every
// message (and can stop reading, to play a slow monitor), SSE readers over plain http.get (one
// that can stop reading too), and a Prometheus text parser. Every wait has a deadline.

import { get, type IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import type { MonitorMessage, StepEvent } from '../../shared/events.js';

export interface MonitorClient {
  readonly socket: WebSocket;
  /** Every message received so far, parsed. */
  readonly messages: MonitorMessage[];
  /** Resolves with the first message (old or new) that satisfies `predicate`. */
  waitFor(predicate: (message: MonitorMessage) => boolean, what: string, timeoutMs?: number): Promise<MonitorMessage>;
  /** Resolves once the coordinator closed the socket. */
  closed(timeoutMs?: number): Promise<void>;
  steps(): StepEvent[];
}

/** Opens a monitor socket; resolves once it is open. */
export function openMonitor(url: string, headers: Record<string, string> = {}): Promise<MonitorClient> {
  const socket = new WebSocket(url, { headers, perMessageDeflate: false });
  const messages: MonitorMessage[] = [];
  const watchers: { predicate: (message: MonitorMessage) => boolean; resolve: (message: MonitorMessage) => void }[] = [];
  let isClosed = false;
  const closeWaiters: (() => void)[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(data.toString()) as MonitorMessage; // the coordinator's own JSON
    messages.push(message);
    for (const watcher of [...watchers]) {
      if (watcher.predicate(message)) {
        watchers.splice(watchers.indexOf(watcher), 1);
        watcher.resolve(message);
      }
    }
  });
  socket.on('close', () => {
    isClosed = true;
    for (const waiter of closeWaiters.splice(0)) waiter();
  });
  const client: MonitorClient = {
    socket,
    messages,
    waitFor: (predicate, what, timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        const found = messages.find(predicate);
        if (found !== undefined) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no monitor message ${what} within ${timeoutMs} ms (got ${messages.length})`)), timeoutMs);
        watchers.push({
          predicate,
          resolve: (message) => {
            clearTimeout(timer);
            resolve(message);
          },
        });
      }),
    closed: (timeoutMs = 30_000) =>
      new Promise((resolve, reject) => {
        if (isClosed) return resolve();
        const timer = setTimeout(() => reject(new Error(`the monitor socket is still open after ${timeoutMs} ms`)), timeoutMs);
        closeWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
    steps: () => messages.filter((message): message is StepEvent => message.type === 'step'),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`could not open ${url} within 10 s`)), 10_000);
    socket.once('open', () => {
      clearTimeout(timer);
      resolve(client);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** The HTTP status a WebSocket upgrade to `url` gets (101 when it opens). */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    const timer = setTimeout(() => reject(new Error(`no answer to the upgrade of ${url} within 10 s`)), 10_000);
    socket.on('unexpected-response', (_request, response) => {
      clearTimeout(timer);
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.on('open', () => {
      clearTimeout(timer);
      resolve(101);
      socket.terminate();
    });
    socket.on('error', () => undefined); // terminate() after an answer reports an error; the status is what counts
  });
}

/** An SSE monitor that records every message and can stop reading (SSE has no pings that would cut it meanwhile). */
export interface EventStreamClient {
  readonly response: IncomingMessage;
  readonly messages: MonitorMessage[];
  waitFor(predicate: (message: MonitorMessage) => boolean, what: string, timeoutMs?: number): Promise<MonitorMessage>;
  /** Resolves once the coordinator ended the stream. */
  ended(timeoutMs?: number): Promise<void>;
  steps(): StepEvent[];
}

/** Opens GET /events; resolves once the 200 head arrived (rejects on another status). */
export function openEventStream(url: string, headers: Record<string, string> = {}): Promise<EventStreamClient> {
  return new Promise((resolve, reject) => {
    const request = get(url, { headers }, (response) => {
      clearTimeout(timer);
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`GET ${url}: HTTP ${response.statusCode}`));
        return;
      }
      const messages: MonitorMessage[] = [];
      const watchers: { predicate: (message: MonitorMessage) => boolean; resolve: (message: MonitorMessage) => void }[] = [];
      let isEnded = false;
      const endWaiters: (() => void)[] = [];
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
        const blocks = text.split('\n\n');
        text = blocks.pop() ?? '';
        for (const block of blocks) {
          if (!block.startsWith('data: ')) continue;
          const message = JSON.parse(block.slice('data: '.length)) as MonitorMessage; // the coordinator's own JSON
          messages.push(message);
          for (const watcher of [...watchers]) {
            if (watcher.predicate(message)) {
              watchers.splice(watchers.indexOf(watcher), 1);
              watcher.resolve(message);
            }
          }
        }
      });
      response.on('close', () => {
        isEnded = true;
        for (const waiter of endWaiters.splice(0)) waiter();
      });
      resolve({
        response,
        messages,
        waitFor: (predicate, what, timeoutMs = 30_000) =>
          new Promise((resolveMessage, rejectMessage) => {
            const found = messages.find(predicate);
            if (found !== undefined) return resolveMessage(found);
            const waitTimer = setTimeout(() => rejectMessage(new Error(`no SSE message ${what} within ${timeoutMs} ms (got ${messages.length})`)), timeoutMs);
            watchers.push({
              predicate,
              resolve: (message) => {
                clearTimeout(waitTimer);
                resolveMessage(message);
              },
            });
          }),
        ended: (timeoutMs = 30_000) =>
          new Promise((resolveEnd, rejectEnd) => {
            if (isEnded) return resolveEnd();
            const endTimer = setTimeout(() => rejectEnd(new Error(`the event stream is still open after ${timeoutMs} ms`)), timeoutMs);
            endWaiters.push(() => {
              clearTimeout(endTimer);
              resolveEnd();
            });
          }),
        steps: () => messages.filter((message): message is StepEvent => message.type === 'step'),
      });
    });
    const timer = setTimeout(() => {
      request.destroy();
      reject(new Error(`no answer to GET ${url} within 10 s`));
    }, 10_000);
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Reads an SSE stream with plain http.get until the server ends it; resolves with the `data:` messages. */
export function readEventStream(url: string, headers: Record<string, string>, timeoutMs = 60_000): Promise<{ status: number; messages: MonitorMessage[] }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { headers }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => {
        clearTimeout(timer);
        const messages = text
          .split('\n\n')
          .filter((block) => block.startsWith('data: '))
          .map((block) => JSON.parse(block.slice('data: '.length)) as MonitorMessage); // the coordinator's own JSON
        resolve({ status: response.statusCode ?? 0, messages });
      });
    });
    const timer = setTimeout(() => {
      request.destroy();
      reject(new Error(`the event stream ${url} did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

export interface PrometheusSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4) strictly enough to catch a
 * malformed line: `# HELP` / `# TYPE` comments and `name{label="value",…} number` samples.
 */
export function parsePrometheus(text: string): { samples: PrometheusSample[]; types: Map<string, string> } {
  const samples: PrometheusSample[] = [];
  const types = new Map<string, string>();
  for (const [index, line] of text.split('\n').entries()) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment !== null) {
      if (comment[1] === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(comment[3] ?? ''))
          throw new Error(`line ${index + 1}: unknown type '${comment[3]}'`);
        types.set(comment[2] ?? '', comment[3] ?? '');
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    if (sample === null) throw new Error(`line ${index + 1} is not a Prometheus sample: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (sample[2] ?? '').split(/,(?=[a-zA-Z_])/).filter((p) => p !== '')) {
      const labelMatch = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/.exec(pair);
      if (labelMatch === null) throw new Error(`line ${index + 1}: bad label ${pair}`);
      labels[labelMatch[1] ?? ''] = labelMatch[2] ?? '';
    }
    const raw = sample[3] ?? '';
    const value = raw === '+Inf' ? Number.POSITIVE_INFINITY : raw === '-Inf' ? Number.NEGATIVE_INFINITY : raw === 'NaN' ? Number.NaN : Number(raw);
    if (Number.isNaN(value) && raw !== 'NaN') throw new Error(`line ${index + 1}: bad value: ${line}`);
    samples.push({ name: sample[1] ?? '', labels, value });
  }
  return { samples, types };
}

/** The value of the one sample named `name` with exactly these labels. */
export function sampleValue(samples: readonly PrometheusSample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (sample) =>
      sample.name === name &&
      Object.keys(sample.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => sample.labels[k] === v),
  );
  if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return found[0]!.value; // length is 1
}
