import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createLrSchedule, type LrScheduleName, resolveLrScheduleSpec } from '../../coordinator/lr-schedule.js';
import { DptError } from '../../shared/errors.js';

// Rates from Python's closed forms, each cross-checked in the script against torch's own
// CosineAnnealingLR / LinearLR / StepLR chained (test/fixtures/optimizers/make-fixtures.py).
interface ScheduleCase {
  readonly schedule: LrScheduleName;
  readonly lr: string;
  readonly totalSteps: number;
  readonly stepsPerEpoch: number;
  readonly warmupSteps: number;
  readonly decayEpochs: number;
  readonly gamma: string;
  readonly rates: string[];
}
const FIXTURE = JSON.parse(readFileSync(new URL('../fixtures/optimizers/lr-schedules.json', import.meta.url), 'utf8')) as { cases: ScheduleCase[] };

const scratch = new DataView(new ArrayBuffer(8));
function fromHex(hex: string): number {
  scratch.setBigUint64(0, BigInt(`0x${hex}`));
  return scratch.getFloat64(0);
}

function configError(action: () => unknown): DptError {
  try {
    action();
  } catch (error) {
    if (error instanceof DptError) return error;
    throw error;
  }
  throw new Error('expected a DptError');
}

describe('createLrSchedule against the torch-checked fixtures', () => {
  const summary: string[] = [];
  for (const fixture of FIXTURE.cases) {
    const name = `${fixture.schedule}, T ${fixture.totalSteps}, warm-up ${fixture.warmupSteps}, decay every ${fixture.decayEpochs} epochs`;
    it(`${name}: equals the reference rates to 1e-15 relative`, () => {
      const spec = resolveLrScheduleSpec({
        lr: fromHex(fixture.lr),
        schedule: fixture.schedule,
        warmupSteps: fixture.warmupSteps,
        decayEpochs: fixture.decayEpochs,
        ...(fixture.decayEpochs > 0 ? { gamma: fromHex(fixture.gamma) } : {}),
      });
      const schedule = createLrSchedule(spec, fixture.totalSteps, fixture.stepsPerEpoch);
      let maxAbsDiff = 0;
      let differing = 0;
      fixture.rates.forEach((hex, t) => {
        const expected = fromHex(hex);
        const actual = schedule.rateAt(t);
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(actual - expected));
        if (actual !== expected) differing++;
        expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-15 * expected);
      });
      summary.push(`${name}: max |diff| ${maxAbsDiff}, ${differing} of ${fixture.rates.length} rates differ in bits`);
    });
  }
  it('prints the comparison', () => {
    console.log(summary.join('\n'));
    expect(summary.length).toBe(FIXTURE.cases.length);
  });
});

describe('createLrSchedule closed forms', () => {
  it('is lr at every step with the constant schedule', () => {
    const schedule = createLrSchedule(resolveLrScheduleSpec({ lr: 0.3 }), 17, 5);
    for (let t = 0; t < 17; t++) expect(schedule.rateAt(t)).toBe(0.3);
  });

  it('follows half a cosine period: lr at t = 0, lr/2 at T/2, near 0 at the last step', () => {
    const schedule = createLrSchedule(resolveLrScheduleSpec({ lr: 0.8, schedule: 'cosine' }), 100, 10);
    expect(schedule.rateAt(0)).toBe(0.8);
    expect(schedule.rateAt(50)).toBeCloseTo(0.4, 15);
    expect(schedule.rateAt(99)).toBeCloseTo(0.8 * 0.5 * (1 + Math.cos((Math.PI * 99) / 100)), 15);
    expect(schedule.rateAt(99)).toBeGreaterThan(0);
    for (let t = 1; t < 100; t++) expect(schedule.rateAt(t)).toBeLessThan(schedule.rateAt(t - 1));
  });

  it('ramps up linearly as (t+1)/N during the warm-up and reaches lr at step N−1', () => {
    const schedule = createLrSchedule(resolveLrScheduleSpec({ lr: 1, warmupSteps: 4 }), 10, 10);
    expect([0, 1, 2, 3, 4, 9].map((t) => schedule.rateAt(t))).toEqual([0.25, 0.5, 0.75, 1, 1, 1]);
  });

  it('multiplies by G once every E epochs, at the first step of the epoch', () => {
    const schedule = createLrSchedule(resolveLrScheduleSpec({ lr: 1, decayEpochs: 2, gamma: 0.5 }), 30, 5);
    // Epochs 0-1 (steps 0-9): 1; epochs 2-3 (steps 10-19): 0.5; epochs 4-5 (steps 20-29): 0.25.
    expect([0, 9, 10, 19, 20, 29].map((t) => schedule.rateAt(t))).toEqual([1, 1, 0.5, 0.5, 0.25, 0.25]);
  });

  it('composes warm-up, cosine and step decay as a product', () => {
    const schedule = createLrSchedule(resolveLrScheduleSpec({ lr: 2, schedule: 'cosine', warmupSteps: 3, decayEpochs: 1, gamma: 0.1 }), 12, 4);
    const cosine = (t: number): number => 0.5 * (1 + Math.cos((Math.PI * t) / 12));
    expect(schedule.rateAt(1)).toBeCloseTo(2 * cosine(1) * (2 / 3), 15);
    expect(schedule.rateAt(5)).toBeCloseTo(2 * cosine(5) * 0.1, 15);
    expect(schedule.rateAt(9)).toBeCloseTo(2 * cosine(9) * 0.01, 15);
  });
});

describe('resolveLrScheduleSpec', () => {
  it('defaults to a constant rate without warm-up or decay', () => {
    expect(resolveLrScheduleSpec({})).toEqual({ lr: 0.1, schedule: 'constant', warmupSteps: 0, decayEpochs: 0, gamma: 1 });
    expect(resolveLrScheduleSpec({ decayEpochs: 3 }).gamma).toBe(0.1);
  });

  it('refuses bad values with a DPT_CONFIG error naming the flag', () => {
    const cases: [Parameters<typeof resolveLrScheduleSpec>[0], RegExp][] = [
      [{ schedule: 'linear' as LrScheduleName }, /--lr-schedule must be one of constant, cosine, got "linear"/],
      [{ lr: 0 }, /--lr must be a positive finite number, got 0/],
      [{ lr: Number.NaN }, /--lr must be a positive finite number, got NaN/],
      [{ warmupSteps: -1 }, /--warmup-steps must be a non-negative integer, got -1/],
      [{ warmupSteps: 2.5 }, /--warmup-steps must be a non-negative integer, got 2.5/],
      [{ decayEpochs: 1.5 }, /--lr-decay-epochs must be a non-negative integer, got 1.5/],
      [{ gamma: 0.5 }, /--lr-gamma needs --lr-decay-epochs/],
      [{ decayEpochs: 2, gamma: 0 }, /--lr-gamma must be a number in \(0, 1\], got 0/],
      [{ decayEpochs: 2, gamma: 1.5 }, /--lr-gamma must be a number in \(0, 1\], got 1.5/],
      [{ decayEpochs: 2, gamma: Number.NaN }, /--lr-gamma must be a number in \(0, 1\], got NaN/],
    ];
    for (const [options, message] of cases) {
      const error = configError(() => resolveLrScheduleSpec(options));
      expect(error.code).toBe('DPT_CONFIG');
      expect(error.message).toMatch(message);
    }
  });

  it('refuses a warm-up longer than the run, naming --warmup-steps', () => {
    const error = configError(() => createLrSchedule(resolveLrScheduleSpec({ warmupSteps: 11 }), 10, 5));
    expect(error.code).toBe('DPT_CONFIG');
    expect(error.message).toBe('--warmup-steps 11 is longer than the run (10 steps)');
  });
});
