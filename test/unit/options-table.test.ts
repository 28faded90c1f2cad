// The training options table (coordinator/options-table.ts): the flags it builds, parsed by the real
// CLI definitions (commander) and merged into the coordinator's config; the run fingerprint and the
// run event derived from it (every option that changes the result is in the fingerprint, no other).

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { addTrainingFlags, coordinatorOptions, DISPLAY_FLAGS, type TrainingFlags } from '../../cli/coordinator-flags.js';
import { fingerprintMismatch, type RunFingerprint } from '../../coordinator/checkpoint.js';
import { type CoordinatorConfig, resolveCoordinatorConfig } from '../../coordinator/config.js';
import { OPTIMIZER_NAMES } from '../../coordinator/optimizers.js';
import { optionEnvVar, optionProperty, type RunFacts, TRAINING_OPTIONS } from '../../coordinator/options-table.js';
import { runFingerprint, runSettings } from '../../coordinator/run-description.js';
import { DEFAULT_MAX_CLASSES } from '../../shared/classes.js';
import { ConfigError } from '../../shared/errors.js';
import { REDUCTION_ID } from '../../shared/reduce.js';
import { temporaryDirectory } from '../helpers/cli.js';

const directory = temporaryDirectory();
afterAll(() => directory.remove());

const setEnv: string[] = [];
afterEach(() => {
  for (const name of setEnv.splice(0)) delete process.env[name];
});

function parse(args: string[]): TrainingFlags {
  const command = addTrainingFlags(new Command('train'), { host: '127.0.0.1', port: 0 });
  command.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  command.parse(['--data', 'x.csv', ...args], { from: 'user' });
  return command.opts<TrainingFlags>();
}

function config(args: string[]): CoordinatorConfig {
  return resolveCoordinatorConfig(coordinatorOptions(parse(args)));
}

/** What a data file would say (the fingerprint's data part comes from it, not from a flag's value). */
const FACTS: RunFacts = { dataSha256: 'a'.repeat(64), rows: 100, features: 3, labelName: 'label', model: 'logistic', kernel: 'lanes8-r4-f64acc-1' };

function fingerprint(args: string[], facts: RunFacts = FACTS): RunFingerprint {
  return runFingerprint(config(args), facts);
}

function parseError(args: string[]): string {
  try {
    parse(args);
  } catch (error) {
    expect(error).toBeInstanceOf(CommanderError);
    return (error as Error).message;
  }
  throw new Error(`${args.join(' ')} was accepted`);
}

describe('the optimizer flags', () => {
  it('default to plain sgd at a constant rate, with --lr and --l2 as its rate and weight decay', () => {
    const c = config(['--lr', '0.25', '--l2', '0.01']);
    expect(c.optimizer).toEqual({ name: 'sgd', momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, l1: 0, ftrlBeta: 1 });
    expect(c.lrSchedule).toEqual({ lr: 0.25, schedule: 'constant', warmupSteps: 0, decayEpochs: 0, gamma: 1 });
  });

  it('reach the optimizer and the schedule', () => {
    const c = config([
      '--optimizer',
      'adam',
      '--beta1',
      '0.8',
      '--beta2',
      '0.99',
      '--eps',
      '1e-6',
      '--momentum',
      '0.5',
      '--lr-schedule',
      'cosine',
      '--warmup-steps',
      '10',
      '--lr-decay-epochs',
      '3',
      '--lr-gamma',
      '0.5',
    ]);
    expect(c.optimizer).toEqual({ name: 'adam', momentum: 0.5, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0, l1: 0, ftrlBeta: 1 });
    expect(c.lrSchedule).toEqual({ lr: 0.1, schedule: 'cosine', warmupSteps: 10, decayEpochs: 3, gamma: 0.5 });
  });

  it("give adagrad torch's ε of 1e-10 unless --eps is given", () => {
    expect(config(['--optimizer', 'adagrad']).optimizer.eps).toBe(1e-10);
    expect(config(['--optimizer', 'adagrad', '--eps', '1e-7']).optimizer.eps).toBe(1e-7);
  });

  it('come from DPT_ environment variables too, the command line winning', () => {
    process.env.DPT_OPTIMIZER = 'nesterov';
    process.env.DPT_MOMENTUM = '0.7';
    process.env.DPT_LR_SCHEDULE = 'cosine';
    process.env.DPT_WARMUP_STEPS = '4';
    setEnv.push('DPT_OPTIMIZER', 'DPT_MOMENTUM', 'DPT_LR_SCHEDULE', 'DPT_WARMUP_STEPS');
    const c = config(['--momentum', '0.6']);
    expect(c.optimizer.name).toBe('nesterov');
    expect(c.optimizer.momentum).toBe(0.6);
    expect(c.lrSchedule.schedule).toBe('cosine');
    expect(c.lrSchedule.warmupSteps).toBe(4);
  });

  it('refuse a malformed value, naming the flag', () => {
    expect(parseError(['--optimizer', 'rmsprop'])).toMatch(
      /--optimizer <name>.*'rmsprop' is invalid\. expected one of sgd, momentum, nesterov, adagrad, adam, adamw/,
    );
    expect(parseError(['--momentum', 'lots'])).toMatch(/--momentum <mu>.*expected a number/);
    expect(parseError(['--beta1', ''])).toMatch(/--beta1 <b1>.*expected a number/);
    expect(parseError(['--eps', 'NaN'])).toMatch(/--eps <epsilon>.*expected a number/);
    expect(parseError(['--lr-schedule', 'linear'])).toMatch(/--lr-schedule <name>.*expected one of constant, cosine/);
    expect(parseError(['--warmup-steps', '-1'])).toMatch(/--warmup-steps <n>.*expected a non-negative integer/);
    expect(parseError(['--warmup-steps', '2.5'])).toMatch(/--warmup-steps <n>.*expected a non-negative integer/);
    expect(parseError(['--lr-decay-epochs', '0'])).toMatch(/--lr-decay-epochs <epochs>.*expected a positive integer/);
  });

  it('refuse an out-of-range value once merged, naming the flag (ConfigError, exit 2)', () => {
    for (const [args, message] of [
      [['--momentum', '1'], /--momentum must be a number in \(0, 1\), got 1/],
      [['--momentum', '0'], /--momentum must be a number in \(0, 1\), got 0/],
      [['--beta1', '1'], /--beta1 must be a number in \[0, 1\), got 1/],
      [['--beta2', '-0.1'], /--beta2 must be a number in \[0, 1\), got -0.1/],
      [['--eps', '0'], /--eps must be a positive finite number, got 0/],
      [['--lr-gamma', '0.5'], /--lr-gamma needs --lr-decay-epochs/],
      [['--lr-decay-epochs', '2', '--lr-gamma', '1.5'], /--lr-gamma must be a number in \(0, 1\], got 1.5/],
    ] as const) {
      let thrown: unknown;
      try {
        config([...args]);
      } catch (error) {
        thrown = error;
      }
      expect(thrown, args.join(' ')).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).exitCode).toBe(2);
      expect((thrown as ConfigError).code).toBe('DPT_CONFIG');
      expect((thrown as Error).message).toMatch(message);
    }
  });
});

describe('the model flags (issue #12)', () => {
  it('default to the model chosen by the labels, at most 1,000 classes, unweighted rows', () => {
    const c = config([]);
    expect(c.model).toBe('auto');
    expect(c.maxClasses).toBe(DEFAULT_MAX_CLASSES);
    expect(c.maxClasses).toBe(1000);
    expect(c.classWeight).toBe('none');
  });

  it('reach the config, from flags and from DPT_ variables', () => {
    const c = config(['--model', 'softmax', '--max-classes', '26', '--class-weight', 'balanced']);
    expect([c.model, c.maxClasses, c.classWeight]).toEqual(['softmax', 26, 'balanced']);
    expect(config(['--model', 'logistic']).model).toBe('logistic');
    expect(config(['--model', 'auto', '--max-classes', '65535']).maxClasses).toBe(65_535);
    process.env.DPT_MODEL = 'softmax';
    process.env.DPT_MAX_CLASSES = '3';
    process.env.DPT_CLASS_WEIGHT = 'balanced';
    setEnv.push('DPT_MODEL', 'DPT_MAX_CLASSES', 'DPT_CLASS_WEIGHT');
    const fromEnv = config(['--max-classes', '4']);
    expect([fromEnv.model, fromEnv.maxClasses, fromEnv.classWeight]).toEqual(['softmax', 4, 'balanced']);
  });

  it('refuse a malformed value, naming the flag', () => {
    expect(parseError(['--model', 'svm'])).toMatch(/--model <kind>.*'svm' is invalid\. expected one of auto, logistic, softmax\./);
    expect(parseError(['--max-classes', '0'])).toMatch(/--max-classes <n>.*expected a positive integer\./);
    expect(parseError(['--max-classes', '2.5'])).toMatch(/--max-classes <n>.*expected a positive integer\./);
    expect(parseError(['--max-classes', '65536'])).toMatch(/--max-classes <n>.*expected a positive integer of at most 65,535\./);
    expect(parseError(['--class-weight', 'auto'])).toMatch(/--class-weight <mode>.*expected one of none, balanced\./);
  });

  it('are validated when given as options, not flags (ConfigError naming the flag, exit 2)', () => {
    for (const [options, message] of [
      [{ model: 'svm' }, /--model must be one of auto, logistic, softmax, got svm/],
      [{ maxClasses: 0 }, /--max-classes must be an integer in \[1, 65535\], got 0/],
      [{ maxClasses: 70_000 }, /--max-classes must be an integer in \[1, 65535\], got 70000/],
      [{ maxClasses: 1.5 }, /--max-classes must be an integer in \[1, 65535\], got 1.5/],
      [{ classWeight: 'inverse' }, /--class-weight must be one of none, balanced, got inverse/],
    ] as const) {
      let thrown: unknown;
      try {
        // Deliberately outside the types: what a caller of the public function might pass.
        resolveCoordinatorConfig({ dataPath: 'x.csv', ...(options as object) });
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).exitCode).toBe(2);
      expect((thrown as Error).message).toMatch(message);
    }
  });
});

/** A value for each flag other than its default, and the flags it needs beside it (one base must show the change). */
interface Sample {
  readonly args: readonly string[];
  readonly bases?: readonly (readonly string[])[];
  /** What the data file would say with this flag (--data, --label-column), or the model it resolves to (--model). */
  readonly facts?: Partial<RunFacts>;
}

const tokenFile = join(directory.path, 'token');
writeFileSync(tokenFile, 'from-a-file\n');
const EACH_OPTIMIZER = OPTIMIZER_NAMES.map((name) => ['--optimizer', name, '--lr-decay-epochs', '1']);

const SAMPLES: Readonly<Record<string, Sample>> = {
  '--data': { args: ['--data', 'other.csv'], facts: { dataSha256: 'c'.repeat(64), rows: 50 } },
  '--label-column': { args: ['--label-column', 'y'], facts: { labelName: 'y' } },
  '--model': { args: ['--model', 'softmax'], facts: { model: 'softmax' } },
  // Sparse data (issue #13): the fingerprint says the run is sparse (a fact of the data the flag reads as LIBSVM) and how a CSV was hashed.
  '--format': { args: ['--format', 'libsvm'], facts: { isSparse: true } },
  '--hash-bits': { args: ['--hash-bits', '10'], facts: { isSparse: true } },
  '--categorical': { bases: [['--hash-bits', '10']], args: ['--categorical', 'a,b'] },
  '--cross': { bases: [['--hash-bits', '10']], args: ['--cross', 'a:b'] },
  '--max-classes': { args: ['--max-classes', '5'] },
  '--class-weight': { args: ['--class-weight', 'balanced'] },
  '--epochs': { args: ['--epochs', '3'] },
  '--early-stopping': { args: ['--early-stopping', '2'], bases: [['--val-split', '0.5']] },
  '--max-steps': { args: ['--max-steps', '50'] },
  '--eval-every': { args: ['--eval-every', '2'] },
  '--batch-size': { args: ['--batch-size', '32', '--chunks', '2'] },
  '--lr': { args: ['--lr', '0.5'] },
  '--l2': { args: ['--l2', '0.01'] },
  '--l1': {
    bases: [
      ['--optimizer', 'sgd'],
      ['--optimizer', 'ftrl'],
    ],
    args: ['--l1', '0.01'],
  },
  '--seed': { args: ['--seed', '7'] },
  '--shuffle': { args: ['--shuffle', 'none'] },
  '--block-rows': { bases: [['--shuffle', 'blocks']], args: ['--block-rows', '100'] },
  '--no-shuffle': { args: ['--no-shuffle'] },
  '--standardize': { args: ['--standardize', 'false'] },
  '--no-standardize': { args: ['--no-standardize'] },
  '--val-split': { args: ['--val-split', '0.2'] },
  '--chunks': { args: ['--chunks', '4'] },
  '--host': { args: ['--host', '0.0.0.0'] },
  '--port': { args: ['--port', '9000'] },
  '--token': { args: ['--token', 's3cret'] },
  '--token-file': { args: ['--token-file', tokenFile] },
  '--monitor-token': { args: ['--monitor-token', 'watch'] },
  '--join-timeout': { args: ['--join-timeout', '5'] },
  '--step-timeout': { args: ['--step-timeout', '5'] },
  '--rejoin-timeout': { args: ['--rejoin-timeout', '5'] },
  '--out': { args: ['--out', 'model.json'] },
  '--metrics': { args: ['--metrics', 'steps.jsonl'] },
  '--reproducible': { args: ['--reproducible', 'false'] },
  '--no-reproducible': { args: ['--no-reproducible'] },
  '--backup-factor': { args: ['--backup-factor', '0'] },
  '--heartbeat': { args: ['--heartbeat', '100'] },
  '--checkpoint': { args: ['--checkpoint', 'run.ckpt'] },
  '--checkpoint-every': { args: ['--checkpoint-every', '5'] },
  '--resume': { args: ['--resume', 'run.ckpt'] },
  '--max-pending-handshakes': { args: ['--max-pending-handshakes', '3'] },
  '--handshake-timeout': { args: ['--handshake-timeout', '7'] },
  '--max-monitors': { args: ['--max-monitors', '2'] },
  '--tls-cert': { args: ['--tls-cert', 'cert.pem', '--tls-key', 'key.pem'] },
  '--tls-key': { args: ['--tls-key', 'key.pem', '--tls-cert', 'cert.pem'] },
  // The kernel the run asks for is a fact of the run (shared/model-kernel.ts runKernelId): --kernel js makes it the TypeScript one.
  '--kernel': { args: ['--kernel', 'js'], facts: { kernel: 'js-f64acc-1' } },
  '--optimizer': { args: ['--optimizer', 'adam'] },
  '--momentum': { bases: EACH_OPTIMIZER, args: ['--momentum', '0.5'] },
  '--beta1': { bases: EACH_OPTIMIZER, args: ['--beta1', '0.5'] },
  '--beta2': { bases: EACH_OPTIMIZER, args: ['--beta2', '0.5'] },
  '--eps': { bases: EACH_OPTIMIZER, args: ['--eps', '0.001'] },
  '--ftrl-beta': { bases: [['--optimizer', 'ftrl']], args: ['--ftrl-beta', '2'] },
  '--lr-schedule': { args: ['--lr-schedule', 'cosine'] },
  '--warmup-steps': { args: ['--warmup-steps', '3'] },
  '--lr-decay-epochs': { args: ['--lr-decay-epochs', '2'] },
  '--lr-gamma': { bases: [['--lr-decay-epochs', '1']], args: ['--lr-gamma', '0.5'] },
};

/** Per base: whether the sample changed the config, and whether it changed the run fingerprint. */
function effects(sample: Sample): { configChanged: boolean; fingerprintChanged: boolean }[] {
  return (sample.bases ?? [[]]).map((base) => {
    const before = config([...base]);
    const after = config([...base, ...sample.args]);
    return {
      configChanged: JSON.stringify(before) !== JSON.stringify(after),
      fingerprintChanged: JSON.stringify(runFingerprint(before, FACTS)) !== JSON.stringify(runFingerprint(after, { ...FACTS, ...sample.facts })),
    };
  });
}

describe('the table of options', () => {
  it('builds every training flag, each once, with a DPT_ variable of its name (none for a --no- switch)', () => {
    const flags = TRAINING_OPTIONS.map((row) => row.flag);
    expect(new Set(flags).size).toBe(flags.length);
    const command = addTrainingFlags(new Command('train'), { host: '127.0.0.1', port: 0 });
    // The table's flags, then the display-only ones (they set nothing of the run).
    expect(command.options.map((option) => option.long)).toEqual([...flags, ...DISPLAY_FLAGS]);
    for (const row of TRAINING_OPTIONS) {
      const option = command.options.find((candidate) => candidate.long === row.flag);
      const envVar = row.flag.startsWith('--no-') ? undefined : `DPT_${row.flag.slice(2).replace(/-/g, '_').toUpperCase()}`;
      expect(option?.envVar, row.flag).toBe(envVar);
      expect(optionEnvVar(row.flag) ?? undefined, row.flag).toBe(envVar);
      expect(option?.attributeName(), row.flag).toBe(optionProperty(row.flag));
    }
  });

  it('has a sample value for every flag (a new row needs one here, so the next two tests cover it)', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(TRAINING_OPTIONS.map((row) => row.flag).sort());
  });

  it('puts every option that changes the result into the run fingerprint', () => {
    for (const row of TRAINING_OPTIONS.filter((r) => r.changesResult)) {
      const sample = SAMPLES[row.flag] as Sample;
      expect(
        effects(sample).some((effect) => effect.fingerprintChanged),
        `${row.flag} changes the result but not the fingerprint`,
      ).toBe(true);
    }
  });

  it('leaves every other option out of the run fingerprint (a resume may change it)', () => {
    for (const row of TRAINING_OPTIONS.filter((r) => !r.changesResult)) {
      for (const effect of effects(SAMPLES[row.flag] as Sample)) {
        expect(effect.configChanged, `${row.flag} reaches the config`).toBe(true);
        expect(effect.fingerprintChanged, `${row.flag} is in the fingerprint`).toBe(false);
      }
    }
  });

  it("gives the fingerprint the data's identity, the options that change the result and the reduction, nothing else", () => {
    expect(fingerprint([])).toEqual({
      dataSha256: FACTS.dataSha256,
      rows: 100,
      features: 3,
      labelColumn: 'label',
      epochs: 10,
      batchSize: 64,
      lr: 0.1,
      l2: 0,
      seed: 1,
      shuffle: true,
      shuffleBlockRows: 0,
      standardize: true,
      valFraction: 0,
      chunksPerBatch: 2,
      kernel: 'lanes8-r4-f64acc-1',
      optimizer: 'sgd',
      lrSchedule: 'constant',
      warmupSteps: 0,
      lrDecayEpochs: 0,
      lrGamma: 1,
      reduction: REDUCTION_ID,
    });
  });

  it('leaves out of the fingerprint what the optimizer does not read (a resume may change it)', () => {
    expect(fingerprint(['--optimizer', 'sgd', '--momentum', '0.5'])).toEqual(fingerprint([]));
    const adam = fingerprint(['--optimizer', 'adam', '--lr-schedule', 'cosine', '--warmup-steps', '5', '--momentum', '0.5']);
    expect(adam).toMatchObject({ optimizer: 'adam', beta1: 0.9, beta2: 0.999, eps: 1e-8, lrSchedule: 'cosine', warmupSteps: 5, lrDecayEpochs: 0, lrGamma: 1 });
    expect(adam).not.toHaveProperty('momentum');
  });

  it('gives the run event the fingerprint, and the optimizer and main settings by name as before', () => {
    const c = config(['--optimizer', 'adam', '--lr-schedule', 'cosine', '--warmup-steps', '5', '--class-weight', 'balanced', '--val-split', '0.5']);
    const settings = runSettings(c, FACTS, { train: 50, validation: 50 });
    expect(settings.fingerprint).toEqual(runFingerprint(c, FACTS));
    expect(settings.fingerprint).toMatchObject({ classWeight: 'balanced' });
    expect(settings.fingerprint).not.toHaveProperty('model'); // logistic, the default: implied
    expect(settings.optimizer).toEqual({
      optimizer: 'adam',
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      lrSchedule: 'cosine',
      warmupSteps: 5,
      lrDecayEpochs: 0,
      lrGamma: 1,
    });
    expect(settings).toMatchObject({ data: 'x.csv', rows: 100, features: 3, trainRows: 50, valRows: 50, batchSize: 64, valFraction: 0.5, workers: 1 });
  });
});

describe('a fingerprint written before --model and --class-weight', () => {
  // What a version 2 checkpoint of before this table holds: every field but model and classWeight.
  const { model: _model, classWeight: _classWeight, ...older } = fingerprint([]);

  it('matches a run with their defaults', () => {
    expect(fingerprintMismatch(older, fingerprint([]))).toBeNull();
  });

  it('is refused by a run with another value, naming the field', () => {
    expect(fingerprintMismatch(older, fingerprint(['--class-weight', 'balanced']))).toBe('classWeight (checkpoint: none, now: balanced)');
    expect(fingerprintMismatch(older, fingerprint(['--model', 'softmax'], { ...FACTS, model: 'softmax' }))).toBe('model (checkpoint: logistic, now: softmax)');
  });
});
