// Runs a relay (issue #11 item 3): between the coordinator and a group of workers, so the
// coordinator's per-step work grows with its relays, not with every worker. Upstream it is a
// worker with a capacity (relay/upstream.ts); downstream, a coordinator for its group
// (relay/group.ts) that runs the coordinator's jobs over it (relay/jobs.ts). A sparse run's
// parameters (issue #13) reach its group through the relay's replica (relay/sparse-params.ts). The
// public entry the CLI and tests share.

import { Scatter } from '../coordinator/scatter.js';
import type { WorkerServer } from '../coordinator/server.js';
import { SparseBroadcast } from '../coordinator/sparse-broadcast.js';
import { ConfigError, DptError } from '../shared/errors.js';
import { shapeOf } from '../shared/model-shape.js';
import type { WelcomeMessage } from '../shared/protocol.js';
import { REDUCTION_ID } from '../shared/reduce.js';
import type { RelayConfig } from './config.js';
import { RelayGroup } from './group.js';
import { RelayJobs, type RelaySparse } from './jobs.js';
import { RelayParams } from './sparse-params.js';
import { UpstreamLink } from './upstream.js';

export interface RelayHooks {
  /** Called once its workers' port is bound, with the URL they connect to. */
  readonly onListening?: (url: string, port: number) => void;
  readonly log?: (line: string) => void;
}

/**
 * Runs until the coordinator says stop (its workers are stopped too) or `stop` aborts (the relay
 * leaves, its workers reconnect elsewhere); rejects when the coordinator refuses it or cannot be
 * reached for --connect-timeout (its workers are let go to reconnect elsewhere).
 */
export async function runRelay(config: RelayConfig, stop: AbortSignal, hooks: RelayHooks = {}): Promise<string> {
  const log = hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  let firstWelcome: WelcomeMessage | null = null;
  // Set by the link's callbacks: a holder, so the code after `await link.run()` sees their writes.
  const state: { server: WorkerServer | null; fatal: Error | null } = { server: null, fatal: null };
  let group: RelayGroup | null = null;
  let jobs: RelayJobs | null = null;
  let relayId = -1;
  let hasStandardization = false;
  const link: UpstreamLink = new UpstreamLink(
    config,
    {
      welcomed: async (welcome) => {
        if (welcome.reduction !== REDUCTION_ID) {
          throw new ConfigError(
            `this relay sums parts along reduction ${REDUCTION_ID}; the coordinator asks for ${welcome.reduction}: run the same dpt release on both`,
          );
        }
        const isSparse = welcome.sparse !== undefined && welcome.sparse !== null;
        if (firstWelcome === null) {
          firstWelcome = welcome;
          const scatter = new Scatter(
            {
              joinTimeoutMs: config.connectTimeoutMs,
              stepTimeoutMs: config.stepTimeoutMs,
              rejoinTimeoutMs: config.rejoinTimeoutMs,
              backupFactor: config.backupFactor,
            },
            RelayJobs.maxUnits(welcome.schedule),
            () => undefined, // membership is logged by the server; the coordinator publishes events
            log,
          );
          const shape = shapeOf(welcome.model, welcome.classes, welcome.features);
          let sparse: RelaySparse | null = null;
          if (isSparse) {
            const params = new RelayParams(shape.features, shape.outputs);
            sparse = { params, broadcast: new SparseBroadcast(params, shape.features, shape.outputs), outputs: shape.outputs };
          }
          jobs = new RelayJobs(
            scatter,
            welcome.schedule,
            welcome.features,
            shape.partWidth,
            (message) => link.send(message),
            {
              badMessage: (error) => {
                log(`bad message from the coordinator (${error.message}); reconnecting`);
                link.giveUp(error.message);
              },
              noWorkers: (reason) => {
                log(`${reason}: giving the relay's share back to the coordinator`);
                link.giveUp('no worker left in its group');
              },
              fatal: (error) => {
                state.fatal = error;
                link.leave(error.message);
              },
            },
            sparse,
          );
          const opened = await RelayGroup.open(
            config,
            welcome,
            scatter,
            () => ({ role: 'relay', coordinator: config.coordinatorUrl, relayId, workers: group?.capacity ?? 0 }),
            log,
            (workers) => link.send({ kind: 'capacity', workers }),
          );
          const server = opened.server;
          state.server = server;
          group = opened.group;
          hasStandardization = welcome.standardization !== null;
          const host = config.host.includes(':') ? `[${config.host}]` : config.host;
          hooks.onListening?.(`ws://${host}:${server.port}`, server.port);
        } else if (!isSameRun(firstWelcome, welcome)) {
          throw new ConfigError('the coordinator now runs another training run than the one this relay serves: restart the relay');
        } else {
          if (!hasStandardization && welcome.standardization !== null) {
            // Applied once: workers standardize their rows in place.
            state.server?.setStandardization(welcome.standardization);
            hasStandardization = true;
          }
          // A new session of a sparse run: the coordinator sends this relay its parameters in full,
          // and the relay its workers (a version is only known to mean the same parameters within
          // one coordinator's run, which a welcome alone cannot tell).
          if (isSparse) for (const worker of state.server?.readyWorkers(true) ?? []) worker.paramsVersion = -1;
        }
        relayId = welcome.workerId;
        jobs?.startSession(relayId);
        log(`relay ${relayId} of the coordinator at ${config.coordinatorUrl}, ${group?.capacity ?? 0} worker(s) ready`);
        return group?.capacity ?? 0;
      },
      message: (message) => {
        if (message.kind === 'standardize') {
          if (!hasStandardization) state.server?.setStandardization(message);
          hasStandardization = true;
        } else jobs?.enqueue(message);
      },
      lost: () => jobs?.endSession(),
    },
    log,
  );
  const onStop = (): void => link.leave('SIGTERM');
  stop.addEventListener('abort', onStop, { once: true });
  try {
    const reason = await link.run();
    if (state.fatal !== null) throw state.fatal;
    // Stopped by the coordinator: the run is over for its workers too. Leaving: they reconnect elsewhere.
    const isRunOver = reason !== 'left';
    await state.server?.close(isRunOver ? reason : 'the relay is leaving', isRunOver);
    return isRunOver ? reason : 'left the coordinator (SIGTERM)';
  } catch (error) {
    await state.server?.close(error instanceof DptError ? error.message : 'relay failed', false);
    throw error;
  } finally {
    stop.removeEventListener('abort', onStop);
  }
}

/** Whether two welcomes carry the same class weights (both none, or equal values). */
function sameWeights(a: Float64Array | null, b: Float64Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((c, k) => Object.is(c, b[k]));
}

/** Whether two welcomes describe the same run (a reconnect): same data, schedule, model, class weights, kernel and reduction. */
function isSameRun(a: WelcomeMessage, b: WelcomeMessage): boolean {
  const s = a.schedule;
  const t = b.schedule;
  return (
    a.sha256 === b.sha256 &&
    a.rows === b.rows &&
    a.features === b.features &&
    a.kernel === b.kernel &&
    a.model === b.model &&
    a.classes === b.classes &&
    sameWeights(a.classWeights, b.classWeights) &&
    a.reduction === b.reduction &&
    s.rows === t.rows &&
    s.valFraction === t.valFraction &&
    s.seed === t.seed &&
    s.shuffle === t.shuffle &&
    s.shuffleBlockRows === t.shuffleBlockRows &&
    s.batchSize === t.batchSize &&
    s.chunksPerBatch === t.chunksPerBatch
  );
}
