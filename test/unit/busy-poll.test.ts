// BusyPoll keeps the event loop spinning for its window after an answer, then lets it sleep.
// Asserted on behaviour, not on timing: the clock (performance.now) is the test's, and the spin
// is observed as the setImmediate turns it schedules.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BusyPoll } from '../../worker/busy-poll.js';

/** The real setImmediate, taken before it is spied on: the test's own turns are not counted. */
const realSetImmediate = globalThis.setImmediate;
let now = 0;
let spins: ReturnType<typeof vi.spyOn>;

/** Lets `count` event-loop turns run (a spinning BusyPoll schedules one turn per turn). */
async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise<void>((resolve) => realSetImmediate(resolve));
}

beforeEach(() => {
  now = 1000;
  vi.spyOn(performance, 'now').mockImplementation(() => now);
  spins = vi.spyOn(globalThis, 'setImmediate');
});
afterEach(() => {
  vi.restoreAllMocks();
});

describe('BusyPoll', () => {
  it('spins, one turn after another, while its window is open', async () => {
    const poll = new BusyPoll(10);
    poll.extend();
    await turns(20);
    // Still inside the window (the clock has not moved): one spin turn per loop turn, no more.
    expect(spins.mock.calls.length).toBeGreaterThanOrEqual(10);
    expect(spins.mock.calls.length).toBeLessThanOrEqual(21);
    expect(performance.now).toHaveBeenCalled(); // the window is read from the test's clock
    now += 11; // the window is over
    await turns(3);
    const after = spins.mock.calls.length;
    await turns(10);
    expect(spins.mock.calls.length).toBe(after); // it sleeps: no turn scheduled any more
  });

  it('stops at the next turn after stop(), and spins again after the next extend()', async () => {
    const poll = new BusyPoll(10_000);
    poll.extend();
    await turns(5);
    expect(spins.mock.calls.length).toBeGreaterThan(0);
    poll.stop();
    await turns(3);
    const stopped = spins.mock.calls.length;
    await turns(10);
    expect(spins.mock.calls.length).toBe(stopped);
    poll.extend();
    await turns(5);
    expect(spins.mock.calls.length).toBeGreaterThan(stopped);
    poll.stop();
    await turns(3);
  });

  it('runs one spin chain however often extend() is called', async () => {
    const poll = new BusyPoll(10_000);
    for (let i = 0; i < 50; i++) poll.extend();
    await turns(10);
    // 50 chains would schedule 50 turns per loop turn.
    expect(spins.mock.calls.length).toBeLessThanOrEqual(11);
    poll.stop();
    await turns(3);
  });

  it('does nothing with a window of 0', async () => {
    new BusyPoll(0).extend();
    await turns(10);
    expect(spins).not.toHaveBeenCalled();
  });
});
