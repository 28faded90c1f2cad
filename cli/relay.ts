// `dpt relay`: a relay between a coordinator and a group of workers (issue #11 item 3). Flags in
// (each also from DPT_<FLAG>), config out, the listen address checked before connecting, then
// relay/run.ts does the work. Prints `relay listening on ws://HOST:PORT` once its port is bound.

import { type Command, Option } from 'commander';
import { isLoopbackAddress, resolveListenAddress } from '../coordinator/auth.js';
import { RELAY_DEFAULTS, resolveRelayConfig } from '../relay/config.js';
import { ConfigError } from '../shared/errors.js';
import { backupFactor, coordinatorUrl, durationMs, port, readCa, resolveToken } from './options.js';
import { checkListenAddress } from './preflight.js';

interface RelayFlags {
  connect: string;
  host: string;
  port: number;
  token?: string;
  tokenFile?: string;
  heartbeat: number;
  ca?: string;
  connectTimeout: number;
  backupFactor: number;
  stepTimeout: number;
  quiet?: boolean;
}

export function addRelayCommand(program: Command): void {
  program
    .command('relay')
    .description('stand between a coordinator and a group of workers: forward each step down, combine their parts up')
    .addOption(new Option('--connect <url>', 'coordinator URL, e.g. ws://host:8787').env('DPT_CONNECT').argParser(coordinatorUrl).makeOptionMandatory())
    .addOption(new Option('--host <addr>', 'address its workers connect to').env('DPT_HOST').default(RELAY_DEFAULTS.host))
    .addOption(new Option('--port <n>', 'port its workers connect to (0 picks one)').env('DPT_PORT').argParser(port).default(RELAY_DEFAULTS.port))
    .addOption(new Option('--token <secret>', "shared secret: presented to the coordinator, required of the relay's workers").env('DPT_TOKEN'))
    .addOption(new Option('--token-file <path>', 'read the token from this file (e.g. a Docker secret)').env('DPT_TOKEN_FILE'))
    .addOption(
      new Option('--heartbeat <ms>', 'ping the coordinator and the workers this often; drop a peer that misses a ping')
        .env('DPT_HEARTBEAT')
        .argParser(durationMs)
        .default(RELAY_DEFAULTS.heartbeatMs),
    )
    .addOption(new Option('--ca <path>', 'PEM CA certificate to trust for a wss:// coordinator').env('DPT_CA'))
    .addOption(
      new Option('--connect-timeout <ms>', 'give up after this long without a coordinator')
        .env('DPT_CONNECT_TIMEOUT')
        .argParser(durationMs)
        .default(RELAY_DEFAULTS.connectTimeoutMs),
    )
    .addOption(
      new Option('--backup-factor <x>', "give a group worker's pending chunks also to an idle one after x times the first answer's time (0: never)")
        .env('DPT_BACKUP_FACTOR')
        .argParser(backupFactor)
        .default(RELAY_DEFAULTS.backupFactor),
    )
    .addOption(
      new Option('--step-timeout <ms>', 'drop a group worker that has not answered within this time; its chunks are recomputed')
        .env('DPT_STEP_TIMEOUT')
        .argParser(durationMs)
        .default(RELAY_DEFAULTS.stepTimeoutMs),
    )
    .option('--quiet', 'log errors only')
    .action(async (flags: RelayFlags) => {
      const config = resolveRelayConfig({
        coordinatorUrl: flags.connect,
        host: flags.host,
        port: flags.port,
        token: resolveToken(flags.token, flags.tokenFile),
        heartbeatMs: flags.heartbeat,
        ca: flags.ca === undefined ? null : readCa(flags.ca),
        connectTimeoutMs: flags.connectTimeout,
        backupFactor: flags.backupFactor,
        stepTimeoutMs: flags.stepTimeout,
      });
      // Refused before connecting: a taken port, or no token where other hosts can reach the relay.
      await checkListenAddress(config.host, config.port);
      if (config.token === null && !isLoopbackAddress(await resolveListenAddress(config.host))) {
        throw new ConfigError(`--host ${config.host}: a relay reachable from other hosts needs --token (or --token-file), the coordinator's`);
      }
      // SIGTERM (or Ctrl-C): tell the coordinator, let the workers reconnect elsewhere, exit 0.
      const stop = new AbortController();
      process.once('SIGTERM', () => stop.abort());
      process.once('SIGINT', () => stop.abort());
      const log = flags.quiet === true ? () => undefined : (line: string) => process.stderr.write(`${line}\n`);
      const { runRelay } = await import('../relay/run.js');
      const reason = await runRelay(config, stop.signal, {
        log,
        onListening: (url) => process.stderr.write(`relay listening on ${url}\n`),
      });
      log(reason);
    });
}
