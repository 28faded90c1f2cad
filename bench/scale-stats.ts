// The arithmetic of the scale bench (bench/scale.ts), kept pure so that it is unit-tested: per-step
// rates between two samples of the coordinator's GET /status, contributors and start-up from the
// --metrics step events, the grouping of workers under relays, and medians over repeated trials.
// Benchmarks only; nothing here is used by the product.

import { median } from './harness.js';

/** One GET /status answer (the fields the bench reads), with the bench's clock when it came. */
export interface StatusSample {
  /** performance.now() of the bench when the answer arrived, ms. */
  readonly atMs: number;
  readonly state: string;
  /** Steps committed. */
  readonly step: number;
  /** The coordinator process's CPU time (user + system) since its start, µs. */
  readonly cpuUs: number;
  /** The coordinator's direct children: workers in a star, relays behind a tree. */
  readonly children: readonly ChildCounters[];
}

export interface ChildCounters {
  readonly id: number;
  /** Bytes of step parts received from this child (upstream), since it joined. */
  readonly partBytes: number;
  /** Bytes of step messages sent to this child (downstream), since it joined. */
  readonly stepBytes: number;
}

/** Per-step figures over a window of steady steps. */
export interface WindowRates {
  readonly steps: number;
  readonly seconds: number;
  /** The coordinator's CPU per committed step, µs (not distorted by oversubscription: CPU time, not wall). */
  readonly cpuUsPerStep: number;
  /** Upstream bytes per step of the busiest child, and the mean over children. */
  readonly upMaxBytesPerStep: number;
  readonly upMeanBytesPerStep: number;
  /** Downstream bytes per step per child (mean). */
  readonly downMeanBytesPerStep: number;
  /** Everything the coordinator received and sent per step, summed over its children. */
  readonly coordinatorBytesPerStep: number;
  /** Children present at both ends of the window. */
  readonly children: number;
}

/**
 * Rates between two /status samples, over the children present in both; null when no step was
 * committed between them (nothing to divide by).
 */
export function windowRates(first: StatusSample, last: StatusSample): WindowRates | null {
  const steps = last.step - first.step;
  if (steps <= 0) return null;
  const before = new Map(first.children.map((child) => [child.id, child]));
  const up: number[] = [];
  const down: number[] = [];
  for (const child of last.children) {
    const earlier = before.get(child.id);
    if (earlier === undefined) continue;
    up.push((child.partBytes - earlier.partBytes) / steps);
    down.push((child.stepBytes - earlier.stepBytes) / steps);
  }
  const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);
  return {
    steps,
    seconds: (last.atMs - first.atMs) / 1000,
    cpuUsPerStep: (last.cpuUs - first.cpuUs) / steps,
    upMaxBytesPerStep: up.length === 0 ? Number.NaN : Math.max(...up),
    upMeanBytesPerStep: up.length === 0 ? Number.NaN : sum(up) / up.length,
    downMeanBytesPerStep: down.length === 0 ? Number.NaN : sum(down) / down.length,
    coordinatorBytesPerStep: sum(up) + sum(down),
    children: up.length,
  };
}

/** Checks a parsed GET /status body and turns it into a sample; throws naming the missing field. */
export function toStatusSample(body: unknown, atMs: number): StatusSample {
  const record = body as Record<string, unknown> | null;
  const number = (value: unknown, field: string): number => {
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new Error(`GET /status: ${field} is not a finite number (${String(value)})`);
    return value;
  };
  if (record === null || typeof record !== 'object') throw new Error('GET /status: not a JSON object');
  const workers = record.workers;
  if (!Array.isArray(workers)) throw new Error('GET /status: workers is not an array');
  return {
    atMs,
    state: String(record.state),
    step: number(record.step, 'step'),
    cpuUs: number(record.cpuUs, 'cpuUs (a coordinator without the CPU figure of issue #11?)'),
    children: workers.map((worker: Record<string, unknown>, i) => ({
      id: number(worker.id, `workers[${i}].id`),
      partBytes: number(worker.partBytes, `workers[${i}].partBytes`),
      stepBytes: number(worker.stepBytes, `workers[${i}].stepBytes`),
    })),
  };
}

/** The fields of a --metrics step event the bench reads. */
export interface StepRecord {
  readonly step: number;
  /** Workers whose parts made up the step. */
  readonly workers: number;
  readonly stepMs: number;
  /** Date.now() when the step committed. */
  readonly time: number;
}

/** The step events of a --metrics JSONL text; other events and a torn last line are skipped. */
export function parseStepEvents(text: string): StepRecord[] {
  const steps: StepRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{') || !line.endsWith('}')) continue;
    const event = JSON.parse(line) as { type?: unknown; step?: unknown; workers?: unknown; stepMs?: unknown; time?: unknown };
    if (event.type !== 'step') continue;
    steps.push({ step: Number(event.step), workers: Number(event.workers), stepMs: Number(event.stepMs), time: Number(event.time) });
  }
  return steps;
}

/** Median contributors of the steps numbered in [fromStep, toStep); NaN when none. */
export function medianContributors(steps: readonly StepRecord[], fromStep: number, toStep: number): number {
  const inWindow = steps.filter((event) => event.step >= fromStep && event.step < toStep).map((event) => event.workers);
  return inWindow.length === 0 ? Number.NaN : median(inWindow);
}

/**
 * Milliseconds from the coordinator's spawn (Date.now() then) to the scatter of the first step:
 * the first step event's commit time less its step time. The coordinator scatters it once every
 * worker has joined and opened the data, so this is start-up as a user sees it.
 */
export function startupMs(spawnedAtMs: number, steps: readonly StepRecord[]): number {
  const first = steps.find((event) => event.step === 0) ?? steps[0];
  return first === undefined ? Number.NaN : first.time - first.stepMs - spawnedAtMs;
}

/** Relays for W workers at fan-in F: ceil(W / F), at least one. */
export function relayCount(W: number, fanIn: number): number {
  return Math.max(1, Math.ceil(W / fanIn));
}

/** Worker i goes to relay floor(i·R / W): contiguous groups whose sizes differ by at most one. */
export function relayOfWorker(i: number, W: number, relays: number): number {
  return Math.floor((i * relays) / W);
}

/** The median of each numeric field over trials (NaN and null left out; null when none is left). */
export function medianFields<K extends string>(trials: readonly Readonly<Record<K, number | null>>[], keys: readonly K[]): Record<K, number | null> {
  const out = {} as Record<K, number | null>;
  for (const key of keys) {
    const values = trials.map((trial) => trial[key]).filter((value): value is number => value !== null && Number.isFinite(value));
    out[key] = values.length === 0 ? null : median(values);
  }
  return out;
}
