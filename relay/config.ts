// A relay's configuration: options in, documented defaults merged, validated once, frozen.

import { ConfigError } from '../shared/errors.js';

export interface RelayConfig {
  /** ws:// or wss:// URL of the coordinator (or of another relay). */
  readonly coordinatorUrl: string;
  /** Address its workers connect to. */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** The shared secret: presented to the coordinator, required of the relay's workers. null: none (loopback only). */
  readonly token: string | null;
  /** Ping period, up and down; a peer that misses a whole period is dropped. */
  readonly heartbeatMs: number;
  /** Extra CA certificate(s) to trust for a wss:// coordinator (PEM), or null for the system's. */
  readonly ca: Buffer | null;
  /** Give up when no coordinator could be reached for this long (first connect or reconnect). */
  readonly connectTimeoutMs: number;
  /** A chunk of the group still pending this many times the first worker's time is also given to an idle worker (0: never). */
  readonly backupFactor: number;
  /** A group worker that has not answered within this time is dropped and its chunks recomputed in the group. */
  readonly stepTimeoutMs: number;
  /**
   * With no worker left in the group while it owes work, how long to wait for one to (re)join;
   * then the relay gives its work back (it leaves the coordinator, which recomputes it elsewhere,
   * and joins again).
   */
  readonly rejoinTimeoutMs: number;
  /** Time a new worker connection has to authenticate. */
  readonly handshakeTimeoutMs: number;
  /** Worker connections that have not finished the handshake, at most. */
  readonly maxPendingHandshakes: number;
}

export type RelayOptions = { [K in keyof RelayConfig]?: RelayConfig[K] | undefined } & Pick<RelayConfig, 'coordinatorUrl'>;

export const RELAY_DEFAULTS = {
  host: '0.0.0.0',
  port: 8788,
  token: null,
  heartbeatMs: 5000,
  ca: null,
  connectTimeoutMs: 60_000,
  backupFactor: 2,
  stepTimeoutMs: 30_000,
  rejoinTimeoutMs: 5000,
  handshakeTimeoutMs: 10_000,
  maxPendingHandshakes: 64,
} as const satisfies Omit<RelayConfig, 'coordinatorUrl'>;

export function resolveRelayConfig(options: RelayOptions): RelayConfig {
  const given = Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as Partial<RelayConfig>;
  const config: RelayConfig = { ...RELAY_DEFAULTS, ...given, coordinatorUrl: options.coordinatorUrl };
  for (const name of ['heartbeatMs', 'connectTimeoutMs', 'stepTimeoutMs', 'rejoinTimeoutMs', 'handshakeTimeoutMs', 'maxPendingHandshakes'] as const) {
    if (!Number.isInteger(config[name]) || config[name] < 1) throw new ConfigError(`${name} must be a positive integer, got ${config[name]}`);
  }
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65_535) throw new ConfigError(`port must be in [0, 65535], got ${config.port}`);
  if (!(config.backupFactor === 0 || (config.backupFactor >= 1 && Number.isFinite(config.backupFactor)))) {
    throw new ConfigError(`backupFactor must be 0 (off) or at least 1, got ${config.backupFactor}`);
  }
  if (config.token === '') throw new ConfigError('token must not be empty');
  return Object.freeze(config);
}
