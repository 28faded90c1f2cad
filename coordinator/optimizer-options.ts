// The options of the optimizer and the rate schedule (issue #12), declared once: flag, parser,
// default, whether it changes the result, and where its value goes. The CLI builds its flags
// (and DPT_… environment variables) from this table, the README's table lists the same rows, and
// a unit test checks that every option that changes the result reaches the run fingerprint.
// The first rows of the "one table of options"; the older flags are still declared in
// cli/coordinator-flags.ts. Ranges that depend on other options (ε's default, --lr-gamma without
// --lr-decay-epochs) are checked once the options are merged (optimizers.ts, lr-schedule.ts).

import type { RunFingerprint } from './checkpoint.js';
import type { OptimizerChoice } from './config.js';
import { LR_SCHEDULE_DEFAULTS, LR_SCHEDULE_NAMES, type LrScheduleOptions, type LrScheduleSpec } from './lr-schedule.js';
import { describeOptimizer, OPTIMIZER_DEFAULTS, OPTIMIZER_NAMES, type OptimizerOptions, type OptimizerSpec } from './optimizers.js';

export interface OptionRow {
  /** The flag, e.g. --optimizer; the environment variable is DPT_ + its name in upper snake case. */
  readonly flag: string;
  /** The value's placeholder in --help. */
  readonly value: string;
  /** The property commander gives the flag (its camel-case name). */
  readonly property: string;
  readonly description: string;
  /** Text to value; throws an Error whose message says what was expected ("expected …"). */
  readonly parse: (text: string) => string | number;
  /** The default as --help and the README show it (applied when the options are merged). */
  readonly defaultText: string;
  /** Whether a different value gives other bits: such an option is in the run fingerprint. */
  readonly changesResult: boolean;
  /** Where the value goes: the optimizer's options or the schedule's, under this key. */
  readonly target:
    | { readonly part: 'optimizer'; readonly key: keyof OptimizerOptions }
    | { readonly part: 'lrSchedule'; readonly key: keyof LrScheduleOptions };
}

function oneOf(names: readonly string[]): (text: string) => string {
  return (text) => {
    const value = text.trim();
    if (!names.includes(value)) throw new Error(`expected one of ${names.join(', ')}.`);
    return value;
  };
}

function finiteNumber(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n)) throw new Error('expected a number.');
  return n;
}

function nonNegativeInteger(text: string): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n)) throw new Error('expected a non-negative integer.');
  return n;
}

function positiveInteger(text: string): number {
  const n = nonNegativeInteger(text);
  if (n === 0) throw new Error('expected a positive integer.');
  return n;
}

export const OPTIMIZER_OPTIONS: readonly OptionRow[] = [
  {
    flag: '--optimizer',
    value: '<name>',
    property: 'optimizer',
    description: `update rule, as torch.optim defines it: ${OPTIMIZER_NAMES.join(', ')}`,
    parse: oneOf(OPTIMIZER_NAMES),
    defaultText: OPTIMIZER_DEFAULTS.name,
    changesResult: true,
    target: { part: 'optimizer', key: 'name' },
  },
  {
    flag: '--momentum',
    value: '<mu>',
    property: 'momentum',
    description: 'μ of momentum and nesterov, in (0, 1)',
    parse: finiteNumber,
    defaultText: String(OPTIMIZER_DEFAULTS.momentum),
    changesResult: true,
    target: { part: 'optimizer', key: 'momentum' },
  },
  {
    flag: '--beta1',
    value: '<b1>',
    property: 'beta1',
    description: "adam's and adamw's first-moment decay β1, in [0, 1)",
    parse: finiteNumber,
    defaultText: String(OPTIMIZER_DEFAULTS.beta1),
    changesResult: true,
    target: { part: 'optimizer', key: 'beta1' },
  },
  {
    flag: '--beta2',
    value: '<b2>',
    property: 'beta2',
    description: "adam's and adamw's second-moment decay β2, in [0, 1)",
    parse: finiteNumber,
    defaultText: String(OPTIMIZER_DEFAULTS.beta2),
    changesResult: true,
    target: { part: 'optimizer', key: 'beta2' },
  },
  {
    flag: '--eps',
    value: '<epsilon>',
    property: 'eps',
    description: 'ε added to the denominator of adagrad, adam, adamw, > 0',
    parse: finiteNumber,
    defaultText: `${OPTIMIZER_DEFAULTS.eps}; adagrad ${OPTIMIZER_DEFAULTS.adagradEps}`,
    changesResult: true,
    target: { part: 'optimizer', key: 'eps' },
  },
  {
    flag: '--lr-schedule',
    value: '<name>',
    property: 'lrSchedule',
    description: `rate over the run: ${LR_SCHEDULE_NAMES.join(', ')} (lr·0.5·(1 + cos(π·t/T)))`,
    parse: oneOf(LR_SCHEDULE_NAMES),
    defaultText: LR_SCHEDULE_DEFAULTS.schedule,
    changesResult: true,
    target: { part: 'lrSchedule', key: 'schedule' },
  },
  {
    flag: '--warmup-steps',
    value: '<n>',
    property: 'warmupSteps',
    description: 'linear warm-up: the rate times (t+1)/N for the first N steps',
    parse: nonNegativeInteger,
    defaultText: String(LR_SCHEDULE_DEFAULTS.warmupSteps),
    changesResult: true,
    target: { part: 'lrSchedule', key: 'warmupSteps' },
  },
  {
    flag: '--lr-decay-epochs',
    value: '<epochs>',
    property: 'lrDecayEpochs',
    description: 'step decay: the rate times --lr-gamma every this many epochs',
    parse: positiveInteger,
    defaultText: 'none',
    changesResult: true,
    target: { part: 'lrSchedule', key: 'decayEpochs' },
  },
  {
    flag: '--lr-gamma',
    value: '<g>',
    property: 'lrGamma',
    description: 'factor of each step decay, in (0, 1]',
    parse: finiteNumber,
    defaultText: String(LR_SCHEDULE_DEFAULTS.gamma),
    changesResult: true,
    target: { part: 'lrSchedule', key: 'gamma' },
  },
];

/** The optimizer's and the schedule's options from parsed flag values (by property); unset ones stay undefined. */
export function optimizerChoice(values: Readonly<Record<string, unknown>>): OptimizerChoice {
  const optimizer: Record<string, unknown> = {};
  const lrSchedule: Record<string, unknown> = {};
  for (const row of OPTIMIZER_OPTIONS) {
    const value = values[row.property];
    if (value === undefined) continue;
    (row.target.part === 'optimizer' ? optimizer : lrSchedule)[row.target.key] = value;
  }
  // Each value came through its row's parser, of the type its target key holds; the names are checked again when merged.
  return { optimizer: optimizer as OptimizerChoice['optimizer'], lrSchedule: lrSchedule as OptimizerChoice['lrSchedule'] };
}

/**
 * The fingerprint's (and the run event's) fields of an optimizer and a schedule: what changes the
 * result, i.e. the hyper-parameters the chosen optimizer reads (describeOptimizer; its weight decay is
 * the fingerprint's l2) and the whole schedule.
 */
export function optimizerFingerprint(
  optimizer: OptimizerSpec,
  schedule: LrScheduleSpec,
): Pick<RunFingerprint, 'optimizer' | 'momentum' | 'beta1' | 'beta2' | 'eps' | 'lrSchedule' | 'warmupSteps' | 'lrDecayEpochs' | 'lrGamma'> {
  const { optimizer: name, weightDecay: _weightDecay, ...hyperParameters } = describeOptimizer(optimizer);
  return {
    optimizer: String(name),
    ...(hyperParameters as { momentum?: number; beta1?: number; beta2?: number; eps?: number }),
    lrSchedule: schedule.schedule,
    warmupSteps: schedule.warmupSteps,
    lrDecayEpochs: schedule.decayEpochs,
    lrGamma: schedule.gamma,
  };
}
