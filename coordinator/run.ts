// Runs a coordinator from a resolved config: loads and standardizes the data, listens, waits
// for workers, trains, and writes the model file. The public entry the CLI and tests share.

import { randomBytes } from 'node:crypto';
import type { Dataset } from '../shared/dataset.js';
import { readDataset } from '../shared/dataset.js';
import { ConfigError } from '../shared/errors.js';
import type { TrainingEvent } from '../shared/events.js';
import { type ModelFile, writeModelFile } from '../shared/model-file.js';
import { KERNEL_ID, PROTOCOL_VERSION } from '../shared/protocol.js';
import { splitRows } from '../shared/schedule.js';
import { applyStandardization, computeStandardization, type Standardization } from '../shared/standardize.js';
import { type CoordinatorConfig, isLoopback } from './config.js';
import { MetricsFile } from './metrics-file.js';
import { WorkerServer } from './server.js';
import { Trainer, type TrainResult } from './trainer.js';

export interface CoordinatorHooks {
  /** Called once the port is bound, with the URL workers connect to and the token in force. */
  readonly onListening?: (url: string, port: number, token: string | null) => void;
  /** Every training event (steps, evals, membership). */
  readonly onEvent?: (event: TrainingEvent) => void;
  /** Called once the schedule is known (before the first step). */
  readonly onStart?: (totalSteps: number) => void;
  readonly log?: (line: string) => void;
}

export interface CoordinatorResult extends TrainResult {
  readonly model: ModelFile;
}

export async function runCoordinator(config: CoordinatorConfig, hooks: CoordinatorHooks = {}): Promise<CoordinatorResult> {
  const log = hooks.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dataset = readDataset(config.dataPath, { labelColumn: config.labelColumn });
  const split = splitRows(dataset.rows, config.valFraction, config.seed);
  if (split.train.length === 0) throw new ConfigError(`the validation split ${config.valFraction} leaves no training rows`);
  if (config.valFraction > 0 && split.validation.length === 0)
    throw new ConfigError(`the validation split ${config.valFraction} of ${dataset.rows} rows holds out no row`);
  const stats = config.standardize ? computeStandardization(dataset.x, dataset.features, split.train) : null;
  const x = dataset.x;
  if (stats !== null) applyStandardization(x, dataset.features, stats);

  // A coordinator reachable from other hosts never runs without a token.
  let token = config.token;
  if (token === null && !isLoopback(config.host)) {
    token = randomBytes(18).toString('base64url');
    log(`no --token given for non-loopback host ${config.host}; generated one: ${token}`);
  }

  const metricsFile = config.metricsPath === null ? null : new MetricsFile(config.metricsPath);
  const emit = (event: TrainingEvent): void => {
    metricsFile?.write(event);
    hooks.onEvent?.(event);
  };
  const trainer = new Trainer(config, { x, y: dataset.y, D: dataset.features, split }, emit, log);
  const server = await WorkerServer.listen(
    {
      host: config.host,
      port: config.port,
      token,
      welcome: {
        kind: 'welcome',
        protocol: PROTOCOL_VERSION,
        dataPath: config.dataPath,
        labelColumn: dataset.labelName,
        rows: dataset.rows,
        features: dataset.features,
        sha256: dataset.sha256,
        schedule: {
          rows: dataset.rows,
          valFraction: config.valFraction,
          seed: config.seed,
          shuffle: config.shuffle,
          batchSize: config.batchSize,
          chunksPerBatch: config.chunksPerBatch,
        },
        standardization: stats,
      },
      limits: { features: dataset.features, maxChunks: config.chunksPerBatch },
      helloTimeoutMs: 10_000,
      readyTimeoutMs: 10 * 60_000,
      log,
      status: () => trainer.status(),
    },
    trainer,
  );
  trainer.attach(server);
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  hooks.onListening?.(`ws://${host}:${server.port}`, server.port, token);
  try {
    await trainer.waitForWorkers();
    hooks.onStart?.(trainer.totalSteps);
    const result = await trainer.run();
    const model = buildModelFile(config, dataset, stats, split.train.length, split.validation.length, result);
    if (config.outPath !== null) writeModelFile(config.outPath, model);
    await server.close('training finished');
    return { ...result, model };
  } catch (error) {
    await server.close('training failed');
    // The last good model survives a failed run (e.g. a divergent update).
    if (config.outPath !== null && trainer.totalSteps > 0) {
      const { w, b } = trainer.model();
      writeModelFile(
        config.outPath,
        buildModelFile(config, dataset, stats, split.train.length, split.validation.length, { w, b, steps: 0, lastEval: null, wallMs: 0, rowsProcessed: 0 }),
      );
    }
    throw error;
  } finally {
    metricsFile?.close();
  }
}

function buildModelFile(
  config: CoordinatorConfig,
  dataset: Dataset,
  stats: Standardization | null,
  trainRows: number,
  valRows: number,
  result: TrainResult,
): ModelFile {
  return {
    format: 'dpt-model',
    version: 1,
    kind: 'logistic-regression',
    weights: Array.from(result.w),
    bias: result.b,
    features: [...dataset.featureNames],
    label: dataset.labelName,
    standardization: stats === null ? null : { mean: Array.from(stats.mean), std: Array.from(stats.std) },
    trainedOn: {
      data: config.dataPath,
      sha256: dataset.sha256,
      rows: dataset.rows,
      trainRows,
      valRows,
      epochs: config.epochs,
      batchSize: config.batchSize,
      lr: config.lr,
      l2: config.l2,
      seed: config.seed,
      shuffle: config.shuffle,
      chunksPerBatch: config.chunksPerBatch,
      steps: result.steps,
      kernel: KERNEL_ID,
      node: process.version,
      finishedAt: new Date().toISOString(),
    },
    metrics:
      result.lastEval === null
        ? {}
        : {
            trainLoss: result.lastEval.trainLoss,
            trainAccuracy: result.lastEval.trainAccuracy,
            valLoss: result.lastEval.valLoss,
            valAccuracy: result.lastEval.valAccuracy,
          },
  };
}
