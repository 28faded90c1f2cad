// Runs a coordinator from a resolved config: reads the data file's shape, listens, waits for
// workers, trains, and writes the model file. The public entry the CLI and tests share.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { BinaryDataset } from '../shared/binary-dataset.js';
import type { ClassList } from '../shared/classes.js';
import { checkDataBlock, type DataFile, openDataFile } from '../shared/data-file.js';
import { CheckpointError, ConfigError, DivergedError, WriteError } from '../shared/errors.js';
import type { EvalEvent, TrainingEvent } from '../shared/events.js';
import {
  logisticModelFile,
  type ModelFile,
  type ModelFileDetails,
  type SparseModelFile,
  softmaxModelFile,
  sparseModelFile,
  writeModelFile,
} from '../shared/model-file.js';
import { runKernelId } from '../shared/model-kernel.js';
import { type ModelShape, zeroParameters } from '../shared/model-shape.js';
import { PASS_BLOCKS, passBlocks } from '../shared/passes.js';
import { PROTOCOL_VERSION } from '../shared/protocol.js';
import { REDUCTION_ID } from '../shared/reduce.js';
import { batchesPerEpoch, splitRows, splitSizes } from '../shared/schedule.js';
import { readSparseDataset, readSparseLabels } from '../shared/sparse-dataset.js';
import { sparseKernelId } from '../shared/sparse-kernel.js';
import { isSparseData, openSparseRunData, type SparseRunData } from '../shared/sparse-run-data.js';
import type { Standardization } from '../shared/standardize.js';
import { isLoopbackAddress, resolveListenAddress } from './auth.js';
import { createBatchCoordinates } from './batch-coordinates.js';
import {
  CheckpointWarnings,
  fingerprintMismatch,
  loadOptimizerState,
  type RunFingerprint,
  readCheckpoint,
  saveOptimizerState,
  writeCheckpoint,
} from './checkpoint.js';
import { balancedClassWeights, countClasses, LABEL_BATCH_ROWS } from './class-weights.js';
import type { CoordinatorConfig } from './config.js';
import { chainRoutes, createDataRoute, DATA_PATH } from './data-route.js';
import type { EarlyStoppingOutcome } from './early-stopping.js';
import { JoinGoal } from './join-goal.js';
import { MetricsFile } from './metrics-file.js';
import { chooseModel } from './model-choice.js';
import { Monitoring } from './monitoring.js';
import { reachableHost } from './reachable-host.js';
import { runFingerprint, runSettings } from './run-description.js';
import { scaleWarning } from './scale-warning.js';
import { Scatter } from './scatter.js';
import { WorkerServer } from './server.js';
import { chooseSparseModel, sparseConfig, sparseDataFile, sparseRunSpec } from './sparse-run.js';
import { type PassProgress, type StartPoint, Trainer, type TrainResult } from './trainer.js';

export interface CoordinatorHooks {
  /** Called once the port is bound, with the URL workers connect to and the token in force. */
  readonly onListening?: (url: string, port: number, token: string | null) => void;
  /** Every training event (steps, evals, membership). */
  readonly onEvent?: (event: TrainingEvent) => void;
  /** Called once the schedule is known (before the first step): the steps the run takes (fewer than the epochs' with --max-steps) and an epoch's. */
  readonly onStart?: (totalSteps: number, stepsPerEpoch: number) => void;
  /** Called after each checkpoint written to --checkpoint, with its step. */
  readonly onCheckpoint?: (step: number) => void;
  readonly log?: (line: string) => void;
  /** A data pass started or moved on (the statistics pass, evaluations). */
  readonly onPass?: (progress: PassProgress) => void;
  /**
   * Straggling chunks of a job were also given to idle workers (backup tasks). Unset: a log line
   * each time (describeBackups); `dpt train` counts them per epoch instead (issue #14 item 1).
   */
  readonly onBackups?: (label: string, chunks: number, workers: number) => void;
  /**
   * Called once, synchronously, when the run has failed and before the cleanup that precedes the
   * rejection: lets `dpt train` report this error rather than its workers' exits that follow it.
   */
  readonly onFailure?: (error: unknown) => void;
  /** Workers to wait for before the first step; default: all of --workers, every one needed. */
  readonly joinGoal?: JoinGoal;
  /**
   * Aborting it ends the run as a failure with the signal's reason (the library API's stop): the
   * wait for workers or the step in flight rejects, workers are told to stop, the server closes,
   * and the model of the steps committed so far is written as for any failed run.
   */
  readonly signal?: AbortSignal;
}

export interface CoordinatorResult extends TrainResult {
  readonly model: ModelFile | SparseModelFile;
}

export async function runCoordinator(givenConfig: CoordinatorConfig, hooks: CoordinatorHooks = {}): Promise<CoordinatorResult> {
  hooks.signal?.throwIfAborted();
  const log = hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // Sparse data (issue #13) is decided by the data and the flags; it is never standardized.
  const sparseSpec = sparseRunSpec(givenConfig);
  const sparseData = isSparseData(givenConfig.dataPath, sparseSpec)
    ? await openSparseRunData(givenConfig.dataPath, sparseSpec, givenConfig.labelColumn, log, '--data', givenConfig.maxClasses)
    : null;
  const config = sparseData === null ? givenConfig : sparseConfig(givenConfig);
  // Only the file's shape: the rows stay with the workers (a CSV is converted once, streaming).
  const dataset =
    sparseData === null ? await openDataFile(config.dataPath, config.labelColumn, log, '--data', undefined, config.maxClasses) : sparseDataFile(sparseData);
  const sizes = splitSizes(dataset.rows, config.valFraction);
  if (sizes.train === 0) throw new ConfigError(`the validation split ${config.valFraction} leaves no training rows`);
  if (config.valFraction > 0 && sizes.validation === 0)
    throw new ConfigError(`the validation split ${config.valFraction} of ${dataset.rows} rows holds out no row`);

  // A coordinator reachable from other hosts never runs without a token. Reachable is decided
  // from the address the name resolves to, which is also the address bound (issue 10, item 5).
  const bindAddress = await resolveListenAddress(config.host);
  let token = config.token;
  if (token === null && !isLoopbackAddress(bindAddress)) {
    token = randomBytes(18).toString('base64url');
    const resolved = bindAddress === config.host ? '' : ` (${bindAddress})`;
    log(`no --token given for non-loopback host ${config.host}${resolved}; generated one: ${token}`);
  }
  // Behind a token, a read-only monitor token is generated when none is given, for the dashboard
  // link printed below: the workers' token is never printed in a URL, and the link opens as
  // printed (issue #14 item 3). The workers' token still opens everything a monitor can.
  const monitorToken = config.monitorToken ?? (token === null ? null : randomBytes(18).toString('base64url'));

  // The classes the labels hold (the file's, discovered when it was converted) decide the model.
  const classes: ClassList = dataset.classes;
  const modelShape = sparseData === null ? chooseModel(config.model, classes, config.maxClasses, dataset.features) : chooseSparseModel(config, sparseData);
  const kernel = sparseData === null ? runKernelId(modelShape, config.kernel) : sparseKernelId(modelShape);
  const classWeights =
    config.classWeight !== 'balanced'
      ? null
      : sparseData === null
        ? trainingClassWeights(dataset.binaryPath, dataset.rows, config, modelShape.classes)
        : sparseTrainingClassWeights(sparseData.sparsePath, dataset.rows, config, modelShape.classes);
  const facts = {
    dataSha256: dataset.identity,
    rows: dataset.rows,
    features: dataset.features,
    labelName: dataset.labelName,
    model: modelShape.kind,
    kernel,
    ...(sparseData === null ? {} : { isSparse: true }),
  };
  const fingerprint = runFingerprint(config, facts);
  if (modelShape.kind === 'softmax') log(`softmax regression over ${modelShape.classes} classes`);
  const start = startPoint(config, fingerprint, modelShape);
  if (start.step > 0) log(`resuming from ${config.resumePath} at step ${start.step}`);
  // Said once the checkpoint (if any) is known to belong to this run.
  if (classWeights !== null) log(`class weights (balanced, n / (K·n_k)): ${Array.from(classWeights).join(', ')}`);

  const perEpoch = batchesPerEpoch(sizes.train, config.batchSize);
  // On resume the loss stream keeps what the checkpoint covers and drops what will be redone.
  const metricsFile =
    config.metricsPath === null
      ? null
      : new MetricsFile(
          config.metricsPath,
          start.step === 0 ? null : (event) => (event.type === 'step' ? event.step < start.step : (event.epoch + 1) * perEpoch <= start.step),
          log,
        );
  const monitoring = new Monitoring({ token, monitorToken, maxMonitors: config.maxMonitors, log });
  const emit = (event: TrainingEvent): void => {
    metricsFile?.write(event);
    monitoring.publish(event);
    hooks.onEvent?.(event);
  };
  // sgd with --l1 on sparse rows: the coordinator reads its own copy of the rows once, for the coordinates of each batch (batch-coordinates.ts).
  const hasLazyL1 = sparseData !== null && config.optimizer.name === 'sgd' && config.optimizer.l1 !== 0;
  const shape = {
    D: dataset.features,
    trainRows: sizes.train,
    validationRows: sizes.validation,
    ...(sparseData === null ? {} : { isSparse: true }),
    ...(hasLazyL1 ? { batchCoordinates: createBatchCoordinates(readSparseDataset(sparseData.sparsePath, '--data'), config) } : {}),
  };
  // A worker whose data fails a block check names the block; the coordinator checks its own copy of it.
  const scatter = new Scatter(config, Math.max(config.chunksPerBatch, passBlocks(dataset.rows)), emit, log, (block) =>
    sparseData === null ? checkDataBlock(dataset.binaryPath, block) : null,
  );
  scatter.setPartListener(monitoring.partAccepted);
  const onAbort = (): void => scatter.stop(abortReason(hooks.signal));
  hooks.signal?.addEventListener('abort', onAbort, { once: true });
  if (hooks.signal?.aborted === true) onAbort();
  const trainer = newTrainer(config, shape, modelShape, start, scatter, emit);
  trainer.setStatsListener((stats) => {
    const warning = scaleWarning({
      standardize: config.standardize,
      lr: config.lr,
      optimizer: config.optimizer,
      model: modelShape.kind,
      classes: modelShape.classes,
      featureNames: dataset.featureNames,
      stats,
    });
    if (warning !== null) log(warning);
  });
  if (hooks.onBackups !== undefined) scatter.setBackupListener(hooks.onBackups);
  if (hooks.onPass !== undefined) trainer.setPassListener(hooks.onPass);
  const checkpointPath = config.checkpointPath;
  const checkpoints = new CheckpointWarnings(checkpointPath ?? '', log);
  if (checkpointPath !== null) {
    trainer.setCommitListener((state) => {
      if (!state.isEpochEnd && state.step % config.checkpointEvery !== 0 && state.step !== trainer.totalSteps) return;
      const earlyStopping = state.earlyStopping();
      metricsFile?.flush(); // the resumed run trims the file to the checkpoint: it must hold every step before it
      checkpoints.write(state.step, () => {
        writeCheckpoint(checkpointPath, {
          fingerprint,
          step: state.step,
          params: Array.from(state.params),
          lastEval: state.lastEval,
          optimizer: saveOptimizerState(state.optimizer()),
          ...(earlyStopping === null ? {} : { earlyStopping }),
          ...(state.sparse === null ? {} : { sparse: state.sparse }),
        });
        hooks.onCheckpoint?.(state.step); // only once it is on disk (writeCheckpoint throws otherwise)
      });
    });
  }
  // Workers without a copy of the data read it from here (GET /data, the workers' token): a sparse
  // run's is the sparse .dpt its data became (worker/remote-sparse-data.ts downloads it whole).
  const dataRoute = createDataRoute({ binaryPath: dataset.binaryPath, identity: dataset.identity, token, log });
  const server = await WorkerServer.listen(
    {
      host: bindAddress,
      port: config.port,
      token,
      monitorToken,
      welcome: {
        kind: 'welcome',
        protocol: PROTOCOL_VERSION,
        // Absolute: a relative path means nothing on a worker started elsewhere (issue #11 item 4).
        dataPath: resolve(config.dataPath),
        dataUrl: DATA_PATH,
        // The user's label choice, so a worker converting the same CSV gets the same cache entry.
        labelColumn: config.labelColumn ?? null,
        rows: dataset.rows,
        features: dataset.features,
        sha256: dataset.identity,
        schedule: {
          rows: dataset.rows,
          valFraction: config.valFraction,
          seed: config.seed,
          shuffle: config.shuffle,
          shuffleBlockRows: config.shuffleBlockRows,
          batchSize: config.batchSize,
          chunksPerBatch: config.chunksPerBatch,
        },
        kernel,
        reduction: REDUCTION_ID,
        // Sent once the statistics pass has computed it (WorkerServer.setStandardization).
        standardization: null,
        model: modelShape.kind,
        classes: modelShape.classes,
        classWeights,
        ...(sparseData === null ? {} : { sparse: sparseSpec }),
      },
      limits: {
        features: dataset.features,
        parameters: modelShape.parameterCount,
        maxChunks: Math.max(config.chunksPerBatch, PASS_BLOCKS),
        ...(sparseData === null ? {} : { sparse: true }),
      },
      helloTimeoutMs: config.handshakeTimeoutMs,
      readyTimeoutMs: 10 * 60_000,
      maxPendingHandshakes: config.maxPendingHandshakes,
      heartbeatMs: config.heartbeatMs,
      unixSocketPath: config.unixSocketPath,
      tls: config.tlsCertPath === null || config.tlsKeyPath === null ? null : readTls(config.tlsCertPath, config.tlsKeyPath),
      log,
      status: () => trainer.status(),
      routes: chainRoutes(dataRoute, monitoring.routes),
    },
    scatter,
  );
  scatter.attach(server);
  trainer.attach(server);
  const host = reachableHost(config.host, bindAddress);
  hooks.onListening?.(`${config.tlsCertPath === null ? 'ws' : 'wss'}://${host}:${server.port}`, server.port, token);
  log(dashboardLine(`${config.tlsCertPath === null ? 'http' : 'https'}://${host}:${server.port}/`, monitorToken, config.monitorToken !== null));
  try {
    await scatter.waitForWorkers(hooks.joinGoal ?? new JoinGoal(config.workers, config.workers));
    hooks.onStart?.(trainer.totalSteps, trainer.stepsPerEpoch);
    const runModel = { kind: modelShape.kind, classCount: classes.values.length, classes: classes.values.slice(0, 50) };
    const settings = { ...runSettings(config, facts, sizes), model: runModel, ...(classWeights === null ? {} : { classWeights: Array.from(classWeights) }) };
    monitoring.started(config, settings, trainer.totalSteps, start.step);
    const result = await trainer.run();
    // Traffic per worker, up and down (issue #11: O(D) per step whatever the chunk count).
    const perStep = (bytes: number): number => Math.round(bytes / Math.max(1, result.stepsRun));
    for (const worker of server.readyWorkers()) {
      log(
        `worker ${worker.id} sent ${worker.parts} step part(s), ${worker.partBytes} bytes (${perStep(worker.partBytes)} bytes per step); ` +
          `received ${worker.stepBytes} bytes of step messages (${perStep(worker.stepBytes)} bytes per step)`,
      );
    }
    logDataServed(dataRoute.served(), log);
    const stopped = describeEarlyStopping(result, trainer.totalSteps);
    if (stopped !== null) log(`dpt: ${stopped}`);
    const model = buildModelFile(config, dataset, fingerprint, sizes, modelShape, classes, classWeights, result, sparseData);
    if (config.outPath !== null) writeModelFile(config.outPath, model);
    await monitoring.finished('finished', result.earlyStopping?.stoppedAfterEpoch == null ? null : stopped);
    await server.close('training finished');
    return { ...result, model };
  } catch (error) {
    hooks.onFailure?.(error);
    await monitoring.finished('failed', error instanceof Error ? error.message : String(error));
    logDataServed(dataRoute.served(), log);
    await server.close('training failed');
    // The last good model survives a failed run (e.g. a divergent update), with the steps it has;
    // a run that trained nothing (no workers came) leaves an existing model file alone, and a
    // model file that could not be written is not tried twice.
    if (config.outPath !== null && !(error instanceof WriteError) && (trainer.stepsCommitted > 0 || error instanceof DivergedError)) {
      try {
        writeModelFile(
          config.outPath,
          buildModelFile(
            config,
            dataset,
            fingerprint,
            sizes,
            modelShape,
            classes,
            classWeights,
            {
              ...trainer.model(),
              steps: trainer.stepsCommitted,
              lastEval: null,
            },
            sparseData,
          ),
        );
      } catch (writeError) {
        // The run's own failure is the one to report; this one is said once, here.
        log(`dpt: warning: the model of the failed run was not saved: ${(writeError as Error).message}`);
      }
    }
    throw error;
  } finally {
    hooks.signal?.removeEventListener('abort', onAbort);
    metricsFile?.close();
  }
}

/** The error an aborted run rejects with: the signal's reason when it is an Error (AbortSignal's default is an AbortError). */
function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error(`the run was aborted: ${String(reason)}`);
}

/**
 * The balanced class weights of the run's training rows (coordinator/class-weights.ts): the
 * labels of the coordinator's own .dpt, read in bounded batches, over splitRows' training rows
 * (the rows every worker trains on), for the K classes of the run.
 */
function trainingClassWeights(binaryPath: string, rows: number, config: CoordinatorConfig, K: number): Float64Array {
  const { train } = splitRows(rows, config.valFraction, config.seed);
  const file = BinaryDataset.open(binaryPath);
  try {
    // 0/1 bytes, or uint16 class indices (a multiclass .dpt).
    const labels = file.labelType === 'uint16' ? new Uint16Array(Math.min(rows, LABEL_BATCH_ROWS)) : new Uint8Array(Math.min(rows, LABEL_BATCH_ROWS));
    const counts = countClasses(train, K, (from, to) => {
      file.readLabels(from, to, labels, 0);
      return labels;
    });
    return balancedClassWeights(counts);
  } finally {
    file.close();
  }
}

/** As trainingClassWeights, from a sparse .dpt's label section (issue #13): its labels only, checked, never its rows. */
function sparseTrainingClassWeights(sparsePath: string, rows: number, config: CoordinatorConfig, K: number): Float64Array {
  const { train } = splitRows(rows, config.valFraction, config.seed);
  const labels = readSparseLabels(sparsePath, '--data');
  return balancedClassWeights(countClasses(train, K, (from, to) => labels.subarray(from, to)));
}

/**
 * The dashboard's line: a link that opens as printed. A generated monitor token goes into it (it
 * is printed nowhere else); a token the user gave is not echoed into the log, only named.
 */
function dashboardLine(url: string, monitorToken: string | null, isGiven: boolean): string {
  const routes = '(loss stream: /monitor, /events; Prometheus: /metrics; status: /status)';
  if (monitorToken === null) return `dashboard ${url} ${routes}`;
  if (isGiven) return `dashboard ${url}?token=<your --monitor-token> ${routes}`;
  return `dashboard ${url}?token=${monitorToken} ${routes}`;
}

/** One closing line when workers read the data over /data (tests and operators see what moved). */
function logDataServed(served: { requests: number; bytes: number }, log: (line: string) => void): void {
  if (served.requests > 0) log(`served ${served.bytes} bytes of the data file over ${DATA_PATH} in ${served.requests} request(s)`);
}

/** Step 0 and a zero model, or the checkpoint's position, model and optimizer state after checking it belongs to this run. */
function startPoint(config: CoordinatorConfig, fingerprint: RunFingerprint, shape: ModelShape): StartPoint {
  if (config.resumePath === null) return { step: 0, params: zeroParameters(shape), optimizer: null, lastEval: null };
  const { version, state: saved } = readCheckpoint(config.resumePath);
  const mismatch = fingerprintMismatch(saved.fingerprint, fingerprint);
  if (mismatch !== null) {
    // A version 1 file predates the optimizers: it holds no moments, so only plain sgd at a constant rate can continue it.
    const why =
      version === 1
        ? ' (a version 1 checkpoint resumes only with --optimizer sgd and --lr-schedule constant, no warm-up or decay)'
        : mismatch.startsWith('kernel ')
          ? ' (that kernel sums in another order, so this release cannot continue its bits: resume it with the dpt release that wrote it, or start again)'
          : '';
    throw new CheckpointError(`${config.resumePath}: the checkpoint belongs to another run: ${mismatch} differs${why}`);
  }
  if (saved.params.length !== shape.parameterCount) {
    throw new CheckpointError(
      `${config.resumePath}: the checkpoint has ${saved.params.length} parameters, the ${shape.kind} model over ${shape.features} features ${shape.parameterCount}`,
    );
  }
  let optimizer: StartPoint['optimizer'];
  try {
    optimizer = loadOptimizerState(saved.optimizer);
  } catch (error) {
    throw new CheckpointError(`${config.resumePath}: ${(error as Error).message}`);
  }
  // A checkpoint without early-stopping state (a run without the flag) starts the rule afresh.
  return {
    step: saved.step,
    params: Float64Array.from(saved.params),
    optimizer,
    lastEval: saved.lastEval,
    earlyStopping: saved.earlyStopping ?? null,
    sparse: saved.sparse ?? null,
  };
}

/** The early-stopping line of the log (and the run's end reason when it stopped the run), or null without it. */
function describeEarlyStopping(result: TrainResult, totalSteps: number): string | null {
  const outcome = result.earlyStopping;
  if (outcome === null) return null;
  const best = `the model is epoch ${outcome.bestEpoch}'s (validation loss ${outcome.bestEval.valLoss})`;
  if (outcome.stoppedAfterEpoch === null) return `early stopping: ran all ${totalSteps} steps; ${best}`;
  return (
    `early stopping: validation loss not improved for ${outcome.patience} evaluation(s), stopped after epoch ${outcome.stoppedAfterEpoch} ` +
    `(step ${result.steps} of ${totalSteps}); ${best}`
  );
}

/** The trainer; an optimizer state the optimizer refuses names the checkpoint it came from. */
function newTrainer(...args: ConstructorParameters<typeof Trainer>): Trainer {
  try {
    return new Trainer(...args);
  } catch (error) {
    const resumePath = args[0].resumePath;
    if (error instanceof CheckpointError && resumePath !== null) throw new CheckpointError(`${resumePath}: ${error.message}`);
    throw error;
  }
}

function readTls(certPath: string, keyPath: string): { cert: Buffer; key: Buffer } {
  try {
    return { cert: readFileSync(certPath), key: readFileSync(keyPath) };
  } catch (error) {
    throw new ConfigError(`cannot read the TLS certificate or key (${(error as Error).message})`);
  }
}

/** The model file; `trainedOn` is the run's fingerprint (what a checkpoint must match) plus where and when. */
function buildModelFile(
  config: CoordinatorConfig,
  dataset: DataFile,
  fingerprint: RunFingerprint,
  sizes: { train: number; validation: number },
  shape: ModelShape,
  classes: ClassList,
  classWeights: Float64Array | null,
  model: {
    params: Float64Array;
    standardization: Standardization | null;
    steps: number;
    lastEval: EvalEvent | null;
    earlyStopping?: EarlyStoppingOutcome | null;
  },
  sparse: SparseRunData | null,
): ModelFile | SparseModelFile {
  const { standardization, params } = model;
  const early = model.earlyStopping ?? null;
  // With early stopping the model is the best evaluation's, and so are its metrics.
  const lastEval = early === null ? model.lastEval : early.bestEval;
  const details: ModelFileDetails = {
    features: dataset.featureNames,
    label: dataset.labelName,
    standardization: standardization === null ? null : { mean: Array.from(standardization.mean), std: Array.from(standardization.std) },
    trainedOn: {
      data: config.dataPath,
      ...fingerprint,
      // --class-weight balanced: the c_k the run applied (the fingerprint says the rule only).
      ...(classWeights === null ? {} : { classWeights: Array.from(classWeights) }),
      trainRows: sizes.train,
      valRows: sizes.validation,
      steps: model.steps,
      node: process.version,
      finishedAt: new Date().toISOString(),
    },
    metrics:
      lastEval === null
        ? {}
        : { trainLoss: lastEval.trainLoss, trainAccuracy: lastEval.trainAccuracy, valLoss: lastEval.valLoss, valAccuracy: lastEval.valAccuracy },
    earlyStopping: early === null ? undefined : { patience: early.patience, bestEpoch: early.bestEpoch, stoppedAfterEpoch: early.stoppedAfterEpoch },
  };
  if (sparse !== null) {
    // w = θ's weights (scale already applied by the trainer); the hashing, when the features were hashed.
    const hashing = sparse.hashing === null ? null : { ...sparse.hashing, labelColumn: dataset.labelName };
    return sparseModelFile(
      { v: params.subarray(0, shape.biasIndex), scale: 1, bias: params.subarray(shape.biasIndex) },
      shape,
      hashing,
      shape.kind === 'softmax' ? classes : null,
      { label: details.label, trainedOn: details.trainedOn, metrics: details.metrics, earlyStopping: details.earlyStopping },
    );
  }
  return shape.kind === 'softmax'
    ? softmaxModelFile(params, shape.classes, shape.features, classes, details)
    : logisticModelFile(params, shape.features, details);
}
