// The optimizer's and the schedule's flags, parsed by the real CLI definitions (commander), merged
// into the coordinator's config, and the table they come from.

import { Command, CommanderError } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { addTrainingFlags, coordinatorOptions, type TrainingFlags } from '../../cli/coordinator-flags.js';
import { resolveCoordinatorConfig } from '../../coordinator/config.js';
import { resolveLrScheduleSpec } from '../../coordinator/lr-schedule.js';
import { OPTIMIZER_OPTIONS, optimizerFingerprint } from '../../coordinator/optimizer-options.js';
import { OPTIMIZER_NAMES, resolveOptimizerSpec } from '../../coordinator/optimizers.js';
import { ConfigError } from '../../shared/errors.js';

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

function config(args: string[]) {
  return resolveCoordinatorConfig(coordinatorOptions(parse(args)));
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
    expect(c.optimizer).toEqual({ name: 'sgd', momentum: 0.9, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
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
    expect(c.optimizer).toEqual({ name: 'adam', momentum: 0.5, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0 });
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

describe('the table of options', () => {
  it('declares each flag once, each with a DPT_ variable of its name', () => {
    const flags = OPTIMIZER_OPTIONS.map((row) => row.flag);
    expect(new Set(flags).size).toBe(flags.length);
    const command = addTrainingFlags(new Command('train'), { host: '127.0.0.1', port: 0 });
    for (const row of OPTIMIZER_OPTIONS) {
      const option = command.options.find((candidate) => candidate.long === row.flag);
      expect(option?.envVar, row.flag).toBe(`DPT_${row.flag.slice(2).replace(/-/g, '_').toUpperCase()}`);
      expect(option?.attributeName(), row.flag).toBe(row.property);
    }
  });

  it('puts every option that changes the result into the run fingerprint, for some optimizer that reads it', () => {
    // Changing one option at a time (to a valid value other than its default) changes the fingerprint.
    const changed: Record<string, string> = {
      '--optimizer': 'adam',
      '--momentum': '0.5',
      '--beta1': '0.5',
      '--beta2': '0.5',
      '--eps': '0.001',
      '--lr-schedule': 'cosine',
      '--warmup-steps': '3',
      '--lr-decay-epochs': '2',
      '--lr-gamma': '0.5',
    };
    for (const row of OPTIMIZER_OPTIONS.filter((r) => r.changesResult)) {
      const value = changed[row.flag];
      expect(value, row.flag).toBeDefined();
      const changesSomewhere = OPTIMIZER_NAMES.some((name) => {
        const base = ['--optimizer', name, '--lr-decay-epochs', '1'];
        const before = config(base);
        const after = config(
          row.flag === '--optimizer' ? ['--optimizer', name === 'adam' ? 'sgd' : 'adam', '--lr-decay-epochs', '1'] : [...base, row.flag, value as string],
        );
        return (
          JSON.stringify(optimizerFingerprint(before.optimizer, before.lrSchedule)) !== JSON.stringify(optimizerFingerprint(after.optimizer, after.lrSchedule))
        );
      });
      expect(changesSomewhere, row.flag).toBe(true);
    }
  });

  it('leaves out of the fingerprint what the optimizer does not read (a resume may change it)', () => {
    const sgd = optimizerFingerprint(resolveOptimizerSpec({ name: 'sgd', momentum: 0.5 }), resolveLrScheduleSpec({}));
    expect(sgd).toEqual({ optimizer: 'sgd', lrSchedule: 'constant', warmupSteps: 0, lrDecayEpochs: 0, lrGamma: 1 });
    const adam = optimizerFingerprint(resolveOptimizerSpec({ name: 'adam' }), resolveLrScheduleSpec({ schedule: 'cosine', warmupSteps: 5 }));
    expect(adam).toEqual({ optimizer: 'adam', beta1: 0.9, beta2: 0.999, eps: 1e-8, lrSchedule: 'cosine', warmupSteps: 5, lrDecayEpochs: 0, lrGamma: 1 });
  });
});
