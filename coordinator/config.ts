// The coordinator's configuration: options in, documented defaults merged, validated once,
// frozen. Internals never see undefined where a default exists.

import { ConfigError } from '../shared/errors.js';

export interface CoordinatorConfig {
  readonly dataPath: string;
  /** Label column as the user named it (header name or 0-based index); undefined = last column. */
  readonly labelColumn: string | undefined;
  readonly epochs: number;
  /** Global mini-batch size B, in rows. */
  readonly batchSize: number;
  /** Learning rate η. */
  readonly lr: number;
  /** L2 strength λ (added as λ·w to the weight gradient, never to the bias). */
  readonly l2: number;
  readonly seed: number;
  readonly shuffle: boolean;
  readonly standardize: boolean;
  /** Fraction of rows held out for validation, in [0, 1). */
  readonly valFraction: number;
  /** Chunks per batch: the unit of work and of recomputation. */
  readonly chunksPerBatch: number;
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Shared secret workers must present; null accepts any worker (loopback only). */
  readonly token: string | null;
  /** Workers to wait for before the first step. */
  readonly workers: number;
  readonly joinTimeoutMs: number;
  /** A worker that has not answered a step within this time is dropped and its rows recomputed. */
  readonly stepTimeoutMs: number;
  /** With no worker left, how long to wait for one to (re)join before failing the run. */
  readonly rejoinTimeoutMs: number;
  /** Model file to write at the end, or null. */
  readonly outPath: string | null;
  /** JSONL file of the loss stream, or null. */
  readonly metricsPath: string | null;
}

export type CoordinatorOptions = Partial<CoordinatorConfig> & Pick<CoordinatorConfig, 'dataPath'>;

export const DEFAULTS = {
  labelColumn: undefined,
  epochs: 10,
  batchSize: 64,
  lr: 0.1,
  l2: 0,
  seed: 1,
  shuffle: true,
  standardize: true,
  valFraction: 0,
  chunksPerBatch: 16,
  host: '127.0.0.1',
  port: 8787,
  token: null,
  workers: 1,
  joinTimeoutMs: 60_000,
  stepTimeoutMs: 30_000,
  rejoinTimeoutMs: 60_000,
  outPath: null,
  metricsPath: null,
} as const satisfies Omit<CoordinatorConfig, 'dataPath'>;

export function resolveCoordinatorConfig(options: CoordinatorOptions): CoordinatorConfig {
  const config: CoordinatorConfig = { ...DEFAULTS, ...definedOnly(options), dataPath: options.dataPath };
  positiveInteger('epochs', config.epochs);
  positiveInteger('batchSize', config.batchSize);
  positiveInteger('chunksPerBatch', config.chunksPerBatch);
  positiveInteger('workers', config.workers);
  positiveInteger('joinTimeoutMs', config.joinTimeoutMs);
  positiveInteger('stepTimeoutMs', config.stepTimeoutMs);
  positiveInteger('rejoinTimeoutMs', config.rejoinTimeoutMs);
  if (!(config.lr > 0 && Number.isFinite(config.lr))) throw new ConfigError(`lr must be a positive number, got ${config.lr}`);
  if (!(config.l2 >= 0 && Number.isFinite(config.l2))) throw new ConfigError(`l2 must be a non-negative number, got ${config.l2}`);
  if (!(config.valFraction >= 0 && config.valFraction < 1)) throw new ConfigError(`valFraction must be in [0, 1), got ${config.valFraction}`);
  if (!Number.isInteger(config.seed) || config.seed < 0 || config.seed > 0xffff_ffff)
    throw new ConfigError(`seed must be an integer in [0, 4294967295], got ${config.seed}`);
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65_535) throw new ConfigError(`port must be in [0, 65535], got ${config.port}`);
  if (config.chunksPerBatch > 65_536) throw new ConfigError(`chunksPerBatch must be at most 65536, got ${config.chunksPerBatch}`);
  if (config.token === '') throw new ConfigError('token must not be empty');
  return Object.freeze(config);
}

function positiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(`${name} must be a positive integer, got ${value}`);
}

function definedOnly<T extends object>(options: T): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<T>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
