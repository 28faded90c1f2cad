// A monitor that stops reading never slows training: the coordinator drops step events for it,
// keeps its other events, and tells it how many it missed once it reads again. /metrics, scraped
// while the run stands still, parses as Prometheus text and agrees with the loss stream. The run
// is driven by a gated worker: it cannot end before the test has seen what it waits for, and it
// stands still when told to (no SIGSTOP racing the run's end).

import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DroppedNotice, MembershipEvent, MonitorMessage } from '../../shared/events.js';
import { killAll, REPO, startCli } from '../helpers/cli.js';
import { startGatedWorker } from '../helpers/gated-worker.js';
import { openEventStream, openMonitor, parsePrometheus, sampleValue } from '../helpers/monitor.js';

const TOKEN = 'backpressure-token';
const BEARER = { authorization: `Bearer ${TOKEN}` };
/**
 * 569 rows in batches of 4 (143 per epoch) over 300 epochs: about 8 MB of step events, more
 * than the loopback socket buffers (a few MB) plus the coordinator's per-monitor limit can hold.
 */
const TOTAL_STEPS = 143 * 300;

afterAll(() => killAll());

const typesOf = (messages: readonly MonitorMessage[], type: MonitorMessage['type']): MonitorMessage[] => messages.filter((m) => m.type === type);

describe('a monitor that stops reading', () => {
  it('does not slow training, loses only step events, and is told how many; /metrics agrees with the stream', async () => {
    const coordinator = startCli(
      [
        'coordinator',
        '--data',
        join(REPO, 'data', 'breast_cancer.csv'),
        '--epochs',
        '300',
        '--batch-size',
        '4',
        '--chunks',
        '1',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--workers',
        '1',
        '--token',
        TOKEN,
        // The gated worker's held step is neither dropped nor given to another worker.
        '--backup-factor',
        '0',
        '--step-timeout',
        '600000',
      ],
      {},
    );
    const [, portText] = await coordinator.waitForLine(/listening on ws:\/\/127\.0\.0\.1:(\d+)/);
    const port = Number(portText);
    // An SSE monitor that stops reading (SSE has no pings, so nothing cuts it however long it sleeps).
    const paused = await openEventStream(`http://127.0.0.1:${port}/events`, BEARER);
    paused.response.pause();
    const reader = await openMonitor(`ws://127.0.0.1:${port}/monitor`, BEARER);
    // Holds the last step: the run cannot end until the test releases it.
    const worker = startGatedWorker(`ws://127.0.0.1:${port}`, TOKEN, TOTAL_STEPS - 1);
    const scrape = async (): Promise<ReturnType<typeof parsePrometheus>> => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: BEARER });
      expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      return parsePrometheus(await response.text());
    };

    // Train until the coordinator has dropped events for the paused monitor (checked every 1000
    // steps; the run stands at its last step at the latest, so this ends either way).
    let seen = 0;
    for (;;) {
      if (sampleValue((await scrape()).samples, 'dpt_monitor_dropped_events_total') > 0) break;
      if (seen >= TOTAL_STEPS - 1) throw new Error('the paused monitor never fell behind during the run');
      seen = Math.min(seen + 1000, TOTAL_STEPS - 1);
      await reader.waitFor((m) => m.type === 'step' && m.step + 1 >= seen, `for step ${seen - 1}`, 120_000);
    }
    // Hold the run: no step commits, so the stream and /metrics hold still.
    const heldAt = await worker.holdNext();
    expect(heldAt).toBeLessThan(TOTAL_STEPS);
    let metrics = await scrape();
    for (let tries = 0; sampleValue(metrics.samples, 'dpt_steps_total') !== reader.steps().length; tries++) {
      if (tries > 1000) throw new Error('the reader never caught up with dpt_steps_total');
      await reader.waitFor((m) => m.type === 'step' && m.step + 1 >= sampleValue(metrics.samples, 'dpt_steps_total'), 'for the last committed step');
      metrics = await scrape();
    }
    const { samples, types } = metrics;
    const steps = reader.steps();
    const last = steps.at(-1)!; // the loop above waited for steps
    const workerId = (reader.messages.find((m) => m.type === 'worker') as MembershipEvent).workerId;
    const rows = steps.reduce((sum, event) => sum + event.rows, 0);
    expect(types.get('dpt_steps_total')).toBe('counter');
    expect(types.get('dpt_step_duration_seconds')).toBe('histogram');
    expect(types.get('dpt_workers_connected')).toBe('gauge');
    expect(types.get('dpt_worker_rows_total')).toBe('counter');
    expect(sampleValue(samples, 'dpt_steps_total')).toBe(steps.length);
    expect(sampleValue(samples, 'dpt_rows_total')).toBe(rows);
    expect(sampleValue(samples, 'dpt_loss')).toBe(last.loss);
    expect(sampleValue(samples, 'dpt_epoch')).toBe(last.epoch);
    expect(sampleValue(samples, 'dpt_steps_planned')).toBe(TOTAL_STEPS);
    expect(sampleValue(samples, 'dpt_step_duration_seconds_count')).toBe(steps.length);
    expect(sampleValue(samples, 'dpt_step_duration_seconds_sum')).toBeCloseTo(
      steps.reduce((sum, event) => sum + event.stepMs / 1000, 0),
      6,
    );
    expect(sampleValue(samples, 'dpt_step_duration_seconds_bucket', { le: '+Inf' })).toBe(steps.length);
    expect(sampleValue(samples, 'dpt_workers_connected')).toBe(1);
    expect(sampleValue(samples, 'dpt_worker_rows_total', { worker: String(workerId) })).toBe(rows);
    expect(sampleValue(samples, 'dpt_worker_failures_total', { worker: String(workerId) })).toBe(0);
    expect(sampleValue(samples, 'dpt_monitors_connected')).toBe(2);
    expect(sampleValue(samples, 'dpt_validation_loss')).toBeNaN(); // no --val-split
    expect(samples.some((sample) => sample.name === 'process_resident_memory_bytes')).toBe(true);

    // Reading again, the paused monitor first gets what was queued, then the count of what it missed.
    paused.response.resume();
    await paused.waitFor((m) => m.type === 'dropped', 'dropped notice');
    worker.release();
    expect((await coordinator.exited(120_000)).code, coordinator.stderr()).toBe(0);
    await Promise.all([paused.ended(), reader.closed()]);

    // Every step event either reached the paused monitor or was counted as dropped; nothing else was lost.
    const dropped = (typesOf(paused.messages, 'dropped') as DroppedNotice[]).reduce((sum, notice) => sum + notice.count, 0);
    expect(dropped).toBeGreaterThan(0);
    const pausedSteps = paused.steps();
    const readerSteps = reader.steps();
    expect(pausedSteps.length + dropped).toBe(TOTAL_STEPS);
    expect(readerSteps).toHaveLength(TOTAL_STEPS);
    expect(pausedSteps).toEqual(pausedSteps.map((event) => readerSteps[event.step]));
    for (const type of ['eval', 'worker', 'run'] as const) expect(typesOf(paused.messages, type)).toEqual(typesOf(reader.messages, type));
    expect(typesOf(reader.messages, 'dropped')).toEqual([]);
  }, 240_000);
});
