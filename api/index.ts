// The package's library entry (package.json "exports"): the typed API of issue #14 item 8, named
// here once so users import from the package name alone. The one re-exporting file of the
// project: what it lists is the public surface, documented in README.md ("Library API").

export type { PassProgress } from '../coordinator/trainer.js';
export {
  AuthError,
  CheckpointError,
  ConfigError,
  CoordinatorLostError,
  DataBlockError,
  DatasetError,
  DivergedError,
  DptError,
  type ErrorCode,
  ModelFileError,
  NoWorkersError,
  ProtocolError,
  WriteError,
} from '../shared/errors.js';
export type { EarlyStoppingMark, EvalEvent, MembershipEvent, StepEvent, TrainingEvent } from '../shared/events.js';
export type {
  EarlyStoppingRecord,
  LogisticModelFile,
  ModelFile,
  ModelHashing,
  ModelStandardization,
  SoftmaxModelFile,
  SparseLogisticModelFile,
  SparseModelFile,
  SparseSoftmaxModelFile,
} from '../shared/model-file.js';
export { isSparseModel } from '../shared/model-file.js';
export { type FeatureRow, type HashedRow, loadModel, modelLabels, type Prediction, predict, type SparseRow } from './predict.js';
export {
  type CoordinatorStartOptions,
  type ListeningInfo,
  type RunHooks,
  type RunningCoordinator,
  startCoordinator,
  type TrainingSettings,
  type TrainOptions,
  type TrainResult,
  train,
} from './runs.js';
export { startWorker, type WorkerStartOptions } from './worker.js';
