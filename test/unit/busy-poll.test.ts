// BusyPoll keeps the event loop spinning for its window after an answer, then lets it sleep.

import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { BusyPoll } from '../../worker/busy-poll.js';

/** Share of the next `ms` milliseconds the event loop spends running rather than waiting. */
async function loopUtilization(ms: number): Promise<number> {
  const before = performance.eventLoopUtilization();
  await sleep(ms);
  return performance.eventLoopUtilization(before).utilization;
}

describe('BusyPoll', () => {
  it('spins the event loop for its window after extend, and sleeps after stop or once the window is over', async () => {
    const poll = new BusyPoll(10_000);
    poll.extend();
    expect(await loopUtilization(60)).toBeGreaterThan(0.5);
    poll.stop();
    await sleep(5); // the last spin turn sees the window closed
    expect(await loopUtilization(60)).toBeLessThan(0.3);
    const short = new BusyPoll(20);
    short.extend();
    await sleep(40);
    expect(await loopUtilization(60)).toBeLessThan(0.3);
  });

  it('does nothing with a window of 0', async () => {
    new BusyPoll(0).extend();
    expect(await loopUtilization(60)).toBeLessThan(0.3);
  });
});
