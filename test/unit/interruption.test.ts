import { describe, expect, it } from 'vitest';
import { RunProgress } from '../../cli/interruption.js';
import type { StepEvent } from '../../shared/events.js';

function step(n: number): StepEvent {
  return { type: 'step', step: n, epoch: 0, loss: 0.5, rows: 64, workers: 1, stepMs: 1, rowsPerSec: 1, time: 0 };
}

describe('RunProgress.describe (the line Ctrl-C prints)', () => {
  it('says nothing was trained before the first step, with the total once it is known', () => {
    const progress = new RunProgress();
    expect(progress.describe('SIGINT', null)).toBe('dpt: stopped by SIGINT before the first step: nothing was trained');
    progress.started(90);
    expect(progress.describe('SIGTERM', 'c.json')).toBe('dpt: stopped by SIGTERM before the first step: nothing was trained (0 of 90 steps)');
  });

  it('counts the steps done (step numbers start at 0) and says --checkpoint would keep them', () => {
    const progress = new RunProgress();
    progress.started(90);
    for (let n = 0; n < 12; n++) progress.handle(step(n));
    expect(progress.describe('SIGINT', null)).toBe(
      'dpt: stopped by SIGINT at step 12 of 90: the 12 step(s) done are lost, and no model was written (with --checkpoint FILE they would be kept, and --resume FILE goes on)',
    );
    expect(progress.describe('SIGINT', 'c.json')).toBe(
      'dpt: stopped by SIGINT at step 12 of 90: the 12 step(s) done are lost: no checkpoint was written to c.json yet (see --checkpoint-every)',
    );
  });

  it('names the checkpoint and its step, and counts a resumed run from where it resumed', () => {
    const progress = new RunProgress();
    progress.started(90);
    for (let n = 40; n < 53; n++) progress.handle(step(n));
    expect(progress.describe('SIGINT', null)).toMatch(/^dpt: stopped by SIGINT at step 53 of 90: the 13 step\(s\) done since step 40 are lost/);
    progress.checkpointed(50);
    expect(progress.describe('SIGINT', 'c.json')).toBe(
      'dpt: stopped by SIGINT at step 53 of 90: c.json holds step 50 (3 later step(s) lost); --resume c.json goes on from there',
    );
  });
});
