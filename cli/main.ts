#!/usr/bin/env node
// The dpt command line: a thin layer of commander over the public functions of coordinator/,
// worker/ and shared/. Exit codes (DESIGN.md): 0 success, 1 training failure, 2 bad usage or input.
// Each command's module is imported when that command runs (issue #11 item 5): a worker process
// does not load the coordinator, the monitor or prom-client, which is start-up time on every host.
// `dpt worker` (what every local worker runs) does not even define the training, data and relay
// commands: their flag tables cost each worker ~0.1 s of module loading (issue #15 item 4).

import { Command, CommanderError, Option } from 'commander';
import { ConfigError, DptError } from '../shared/errors.js';
import { requireRegularFile } from '../shared/regular-file.js';
import { applyHelpConventions } from './help.js';
import { coordinatorUrls, cpuList, durationMs, integerIn, MAX_THREADS, nonNegativeInteger, pollMs, positiveInteger, readCa, resolveToken } from './options.js';
import { listenError } from './preflight.js';
import { applyTierUpBudget } from './tier-up.js';
import type { LocalWorkerFlags, RemoteWorkerFlags } from './train.js';

/** What commander would have written to stderr for the error being raised (its message and any help). */
let commanderStderr = '';
// Commander's own errors (unknown option, missing argument, invalid value) become one line in the
// form of every other usage error, printed by the catch below; exitOverride and configureOutput
// are inherited by every subcommand created after them.
const program = new Command('dpt')
  .description('Distributed data-parallel training of logistic and softmax regression over WebSocket workers')
  .version('0.1.0')
  .exitOverride()
  .configureOutput({
    writeErr: (text) => {
      commanderStderr += text;
    },
    outputError: () => undefined,
  });

/** Whether this process runs `dpt worker`: then only the commands a worker needs are defined. */
const isWorkerCommand = process.argv[2] === 'worker';

if (!isWorkerCommand) {
  const { addTrainingFlags } = await import('./coordinator-flags.js');
  addTrainingFlags(program.command('train').description('train with a coordinator and N local worker processes, in one command'), {
    host: '127.0.0.1',
    port: 0,
  })
    .addOption(
      new Option('--workers <n>', 'local worker processes to start (at most 4 per CPU, 256 in all)').env('DPT_WORKERS').argParser(positiveInteger).default(2),
    )
    .addOption(
      new Option('--min-workers <n>', 'start once this many local workers joined, if the others died or the join timeout passed')
        .env('DPT_MIN_WORKERS')
        .argParser(positiveInteger)
        .default(1),
    )
    .addOption(
      new Option('--memory-budget <MB>', 'each local worker holds the data in memory up to this size, else reads rows from the file (0: always read)')
        .env('DPT_MEMORY_BUDGET')
        .argParser(nonNegativeInteger),
    )
    .addOption(new Option('--no-pin', 'let the OS place the coordinator and the local workers (default: pinned to CPUs with taskset, on Linux)'))
    .addOption(
      new Option('--threads <n>', 'compute threads per local worker (default: the CPUs each worker gets, at least 1)')
        .env('DPT_THREADS')
        .argParser(integerIn(1, MAX_THREADS)),
    )
    .addOption(
      new Option('--poll <ms>', "pinned workers on a CPU other than the coordinator's poll this long for the next step before sleeping (0: off)")
        .env('DPT_POLL')
        .argParser(pollMs)
        .default(2),
    )
    .action(async (flags: LocalWorkerFlags) => (await import('./train.js')).trainCommand(flags));

  addTrainingFlags(program.command('coordinator').description('run a coordinator for remote workers (dpt worker)'), { host: '0.0.0.0', port: 8787 })
    .addOption(new Option('--workers <n>', 'workers to wait for before the first step').env('DPT_WORKERS').argParser(positiveInteger).default(1))
    .addOption(
      new Option('--min-workers <n>', 'start at --join-timeout once this many workers joined (default: all of --workers); later ones join mid-run')
        .env('DPT_MIN_WORKERS')
        .argParser(positiveInteger),
    )
    .action(async (flags: RemoteWorkerFlags) => (await import('./train.js')).coordinatorCommand(flags));
}

program
  .command('worker')
  .description('connect to a coordinator and compute gradient parts')
  .addOption(
    new Option('--connect <url>', 'coordinator or relay URL, e.g. ws://host:8787; several, comma-separated, are tried in turn (also on reconnect)')
      .env('DPT_CONNECT')
      .argParser(coordinatorUrls)
      .makeOptionMandatory(),
  )
  .addOption(new Option('--token <secret>', 'shared secret').env('DPT_TOKEN'))
  .addOption(new Option('--token-file <path>', 'read the token from this file (e.g. a Docker secret)').env('DPT_TOKEN_FILE'))
  .addOption(
    new Option(
      '--data <path|url>',
      "local data file (CSV, .csv.gz or .dpt), or http(s) URL of a .dpt file (default: the coordinator's path, else its /data)",
    ).env('DPT_WORKER_DATA'),
  )
  .addOption(
    new Option('--connect-timeout <ms>', 'give up after this long without a coordinator').env('DPT_CONNECT_TIMEOUT').argParser(durationMs).default(60_000),
  )
  .addOption(
    new Option('--heartbeat <ms>', 'ping the coordinator this often; reconnect when a ping goes unanswered')
      .env('DPT_HEARTBEAT')
      .argParser(durationMs)
      .default(5000),
  )
  .addOption(new Option('--ca <path>', 'PEM CA certificate to trust for wss://').env('DPT_CA'))
  .addOption(
    new Option('--memory-budget <MB>', 'hold the data in memory up to this size, else read rows from the file as needed (0: always read)')
      .env('DPT_MEMORY_BUDGET')
      .argParser(nonNegativeInteger)
      .default(1024),
  )
  .addOption(
    new Option('--threads <n>', 'compute threads: large steps are split over them (memory-held data, reproducible runs)')
      .env('DPT_THREADS')
      .argParser(integerIn(1, MAX_THREADS))
      .default(1),
  )
  .addOption(
    new Option('--thread-cpus <list>', 'pin the extra compute threads to these CPUs, in order (Linux, taskset)').env('DPT_THREAD_CPUS').argParser(cpuList),
  )
  .addOption(
    new Option('--poll <ms>', 'after each answer, poll for the next step this long before sleeping (costs that CPU; 0: off)')
      .env('DPT_POLL')
      .argParser(pollMs)
      .default(0),
  )
  .option('--quiet', 'log errors only')
  .action(
    async (flags: {
      connect: string[];
      token?: string;
      tokenFile?: string;
      data?: string;
      connectTimeout: number;
      heartbeat: number;
      ca?: string;
      memoryBudget: number;
      threads: number;
      threadCpus?: number[];
      poll: number;
      quiet?: boolean;
    }) => {
      // A FIFO or device as --data would block the worker past Ctrl-C: refused before connecting.
      const { isDataUrl } = await import('../worker/data-source.js');
      if (flags.data !== undefined && !isDataUrl(flags.data)) requireRegularFile(flags.data, '--data');
      if (flags.data !== undefined && isDataUrl(flags.data) && !URL.canParse(flags.data)) throw new ConfigError(`--data ${flags.data} is not a valid URL`);
      // SIGTERM (or Ctrl-C): answer the step being computed, say goodbye, exit 0.
      const stop = new AbortController();
      process.once('SIGTERM', () => stop.abort());
      process.once('SIGINT', () => stop.abort());
      // The library's own worker (api/worker.ts): the CLI only turns flags into its options.
      const { startWorker } = await import('../api/worker.js');
      const ca = flags.ca === undefined ? null : readCa(flags.ca);
      await startWorker({
        url: flags.connect,
        token: resolveToken(flags.token, flags.tokenFile),
        ...(flags.data === undefined ? {} : { dataPath: flags.data }),
        connectTimeoutMs: flags.connectTimeout,
        heartbeatMs: flags.heartbeat,
        memoryBudgetMB: flags.memoryBudget,
        threads: flags.threads,
        threadCpus: flags.threadCpus ?? [],
        pollMs: flags.poll,
        ...(ca === null ? {} : { ca }),
        signal: stop.signal,
        log: flags.quiet === true ? () => undefined : (line) => process.stderr.write(`${line}\n`),
        warn: (line) => process.stderr.write(`${line}\n`),
      });
    },
  );

program
  .command('monitor')
  .description("follow a coordinator's loss stream: a live view on a terminal, JSON lines with --json; exits when the run ends")
  .argument('<url>', 'coordinator address, e.g. http://host:8787 or ws://host:8787 (the /monitor path is added)')
  .addOption(new Option('--token <secret>', "monitor token (or the workers' token)").env('DPT_MONITOR_TOKEN'))
  .addOption(new Option('--token-file <path>', 'read the token from this file').env('DPT_MONITOR_TOKEN_FILE'))
  .option('--json', 'print every message as one JSON object per line')
  .addOption(
    new Option('--connect-timeout <ms>', 'give up after this long without a coordinator').env('DPT_CONNECT_TIMEOUT').argParser(durationMs).default(60_000),
  )
  .addOption(new Option('--ca <path>', 'PEM CA certificate to trust for wss://').env('DPT_CA'))
  .action(async (url: string, flags: { token?: string; tokenFile?: string; json?: boolean; connectTimeout: number; ca?: string }) => {
    const { runMonitor } = await import('./monitor.js');
    const end = await runMonitor({
      url,
      token: resolveToken(flags.token, flags.tokenFile),
      isJson: flags.json === true,
      connectTimeoutMs: flags.connectTimeout,
      ca: flags.ca === undefined ? null : readCa(flags.ca),
      out: process.stdout,
      log: (line) => process.stderr.write(`${line}\n`),
    });
    // The monitor reports the run's outcome: 0 when it finished, 1 when it failed.
    if (end.outcome === 'failed') {
      process.stderr.write(`dpt: the run failed: ${end.reason ?? 'no reason given'}\n`);
      process.exit(1);
    }
  });

program
  .command('predict')
  .description('write the predicted class and the class probabilities of every row of a data file (CSV, .csv.gz or .dpt)')
  .requiredOption('--model <path>', 'model file written by dpt train --out')
  .requiredOption(
    '--data <path>',
    "data file holding the model's feature columns, by header name: CSV (.csv, or gzip .csv.gz) or .dpt; a label column is ignored",
  )
  .option('--out <path>', 'output CSV (default: stdout); columns: logistic probability,prediction; softmax prediction,p_<class> (one per class)')
  .option('--format <csv|libsvm>', 'input format (default: libsvm for .svm/.libsvm, else CSV); a hashed model reads CSV, a LIBSVM model LIBSVM')
  .action(async (flags: { model: string; data: string; out?: string; format?: string }) =>
    (await import('./predict.js')).predictCommand(flags.model, flags.data, flags.out ?? null, flags.format),
  );

program
  .command('evaluate')
  .description(
    'metrics of a model on a labelled data file (CSV, .csv.gz or .dpt): logistic log-loss, accuracy, precision, recall, F1, ROC AUC; softmax accuracy, log-loss, per-class and macro precision/recall/F1, confusion matrix',
  )
  .requiredOption('--model <path>', 'model file written by dpt train --out')
  .requiredOption('--data <path>', "labelled data file holding the model's feature columns: CSV (.csv, or gzip .csv.gz) or .dpt")
  .option('--label-column <name|index>', "label column (default: the model's label name, else the last column)")
  .option('--json', 'print the metrics as one JSON object')
  .option('--format <csv|libsvm>', 'input format (default: libsvm for .svm/.libsvm, else CSV); a hashed model reads CSV, a LIBSVM model LIBSVM')
  .action(async (flags: { model: string; data: string; labelColumn?: string; json?: boolean; format?: string }) => {
    await (await import('./predict.js')).evaluateCommand(flags.model, flags.data, flags.labelColumn, flags.json === true, flags.format);
  });

program
  .command('export')
  .description('write a model file as an ONNX model (standardization folded in) for any ONNX runtime')
  .argument('<model>', 'model file written by dpt train --out (logistic or softmax)')
  .argument('<out>', 'ONNX file to write, e.g. model.onnx')
  .option('--format <name>', 'output format: onnx', 'onnx')
  .option('--precision <type>', 'weights, input and probabilities as float32 (the usual ONNX input) or float64', 'float32')
  .addHelpText('after', '\nExample:\n  dpt export --format onnx model.json model.onnx')
  .action(async (model: string, out: string, flags: { format: string; precision: string }) =>
    (await import('./export.js')).exportCommand({ ...flags, modelPath: model, outPath: out, producerVersion: program.version() ?? '' }),
  );

if (!isWorkerCommand) {
  (await import('./relay.js')).addRelayCommand(program);
  (await import('./data.js')).addDataCommands(program);
}
applyHelpConventions(program);

try {
  // Before any command runs: V8's tier-up threshold for dpt's per-step code (cli/tier-up.ts).
  applyTierUpBudget(process.env);
  await program.parseAsync(process.argv);
  process.exit(0);
} catch (error) {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) process.exit(0); // --help, --version
    process.stderr.write(`dpt: ${commanderLine(error)}; run with --help for usage (DPT_CONFIG)\n`);
    process.exit(2);
  }
  const bindFailure = listenError(error, listenAddress(error), listenPort(error));
  const known = bindFailure ?? error;
  if (known instanceof DptError) {
    process.stderr.write(`dpt: ${known.message} (${known.code})\n`);
    process.exit(known.exitCode);
  }
  process.stderr.write(`dpt: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}

/** One line for a commander error: its message without the "error: " prefix, suggestions joined on. */
function commanderLine(error: CommanderError): string {
  if (error.code === 'commander.help') {
    // A command with subcommands given none: commander printed its help; say which command instead.
    const usage = /Usage: (\S+(?: \S+)*?) \[options\]/.exec(commanderStderr)?.[1] ?? 'dpt';
    return `missing command after '${usage}'`;
  }
  return error.message
    .replace(/^error: /, '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' ')
    .replace(/\.$/, '');
}

function listenAddress(error: unknown): string {
  const address = (error as { address?: unknown } | null)?.address;
  return typeof address === 'string' ? address : ((error as { hostname?: unknown } | null)?.hostname?.toString() ?? '?');
}

function listenPort(error: unknown): number {
  const port = (error as { port?: unknown } | null)?.port;
  return typeof port === 'number' ? port : 0;
}
