// startWorker(): a worker in this process (issue #14 item 8), and what `dpt worker` runs. Its own
// file so that a worker process loads no coordinator module (start-up time on every host).

import { ConfigError } from '../shared/errors.js';
import { runWorker } from '../worker/client.js';

export interface WorkerStartOptions {
  /** The coordinator's (or a relay's) ws:// or wss:// URL; several are tried in turn. */
  readonly url: string | readonly string[];
  /** The workers' token, when the coordinator has one. */
  readonly token?: string | null;
  /** Local path or http(s) URL of the data file (default: the coordinator's path, else its /data). */
  readonly dataPath?: string;
  /** Give up after this long without a coordinator (default 60,000 ms). */
  readonly connectTimeoutMs?: number;
  /** Ping the coordinator this often (default 5000 ms). */
  readonly heartbeatMs?: number;
  /** Hold the data in memory up to this many MB, else read rows from the file (default 1024). */
  readonly memoryBudgetMB?: number;
  /** Compute threads (default 1). */
  readonly threads?: number;
  /** Pin the extra compute threads to these CPUs, in order (Linux, taskset; default: not pinned). */
  readonly threadCpus?: readonly number[];
  /** After each answer, poll for the next step this long before sleeping (costs that CPU; default 0: off). */
  readonly pollMs?: number;
  /** PEM CA certificate(s) to trust for wss:// (default: the system's). */
  readonly ca?: Buffer;
  /** Aborting it makes the worker answer the step in hand, say goodbye and resolve. */
  readonly signal?: AbortSignal;
  /** The worker's log lines (default: none). */
  readonly log?: (line: string) => void;
  /** Lines worth a warning (default: written to stderr). */
  readonly warn?: (line: string) => void;
}

/**
 * Runs a worker in this process (its compute on this event loop, or `threads` worker threads):
 * resolves when the coordinator says stop (the run ended) or `signal` aborts; rejects with
 * CoordinatorLostError when no coordinator answers within connectTimeoutMs, AuthError on a bad
 * token, DatasetError on bad data.
 */
export async function startWorker(options: WorkerStartOptions): Promise<void> {
  const urls = typeof options.url === 'string' ? [options.url] : [...options.url];
  if (urls.length === 0) throw new ConfigError('url: at least one coordinator URL is needed');
  const threads = options.threads ?? 1;
  if (!Number.isSafeInteger(threads) || threads < 1) throw new ConfigError(`threads must be a positive integer, got ${threads}`);
  const budgetMB = options.memoryBudgetMB ?? 1024;
  if (!(Number.isSafeInteger(budgetMB) && budgetMB >= 0)) throw new ConfigError(`memoryBudgetMB must be a non-negative integer, got ${budgetMB}`);
  const pollMs = options.pollMs ?? 0;
  if (!(Number.isFinite(pollMs) && pollMs >= 0)) throw new ConfigError(`pollMs must be a non-negative number, got ${pollMs}`);
  await runWorker({
    urls,
    token: options.token ?? null,
    dataPath: options.dataPath ?? null,
    connectTimeoutMs: options.connectTimeoutMs ?? 60_000,
    heartbeatMs: options.heartbeatMs ?? 5000,
    ca: options.ca ?? null,
    memoryBudgetBytes: budgetMB * 1024 * 1024,
    threads,
    threadCpus: [...(options.threadCpus ?? [])],
    pollMs,
    stop: options.signal ?? new AbortController().signal,
    log: options.log ?? (() => undefined),
    warn: options.warn ?? ((line) => process.stderr.write(`${line}\n`)),
  });
}
