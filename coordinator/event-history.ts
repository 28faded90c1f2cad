// The bounded history a monitor receives when it connects mid-run: every eval, membership and
// run event (up to a cap), and a sample of the step events: every k-th step, where k doubles,
// and every other kept step is let go, whenever the sample is full. Adding a step allocates
// nothing. A late joiner takes a snapshot (references, not copies) and is sent it at its pace.

import type { StepEvent, StreamEvent } from '../shared/events.js';

/** Step events kept at most (the sample is halved and the stride doubled when full). */
export const DEFAULT_MAX_STEP_EVENTS = 4096;
/**
 * Eval, membership and run events kept at most; past it the oldest tenth goes (run events stay).
 * With the step sample this bounds what each monitor's snapshot holds (issue 10, item 4).
 */
export const MAX_OTHER_EVENTS = 10_000;

export class EventHistory {
  private readonly maxSteps: number;
  /** The step sample, oldest first, preallocated. */
  private readonly steps: (StepEvent | null)[];
  /** Position of each sampled step in the whole stream, to merge it with the other events. */
  private readonly stepSeq: Float64Array;
  private sampled = 0;
  private stride = 1;
  private stepsSeen = 0;
  /** The newest step, replayed even when the sample skipped it. */
  private lastStep: StepEvent | null = null;
  private lastStepSeq = -1;
  private readonly others: StreamEvent[] = [];
  private readonly otherSeq: number[] = [];
  private seq = 0;

  constructor(maxSteps = DEFAULT_MAX_STEP_EVENTS) {
    if (!(Number.isInteger(maxSteps) && maxSteps >= 2 && maxSteps % 2 === 0)) throw new Error(`maxSteps must be an even integer ≥ 2, got ${maxSteps}`);
    this.maxSteps = maxSteps;
    this.steps = new Array<StepEvent | null>(maxSteps).fill(null);
    this.stepSeq = new Float64Array(maxSteps);
  }

  add(event: StreamEvent): void {
    const seq = this.seq++;
    if (event.type !== 'step') {
      this.others.push(event);
      this.otherSeq.push(seq);
      if (this.others.length > MAX_OTHER_EVENTS) this.trimOthers();
      return;
    }
    this.lastStep = event;
    this.lastStepSeq = seq;
    if (this.stepsSeen++ % this.stride !== 0) return;
    if (this.sampled === this.maxSteps) this.halve();
    this.steps[this.sampled] = event;
    this.stepSeq[this.sampled] = seq;
    this.sampled++;
  }

  /** Step events seen so far (the sample keeps every `stepStride`-th). */
  get stepCount(): number {
    return this.stepsSeen;
  }

  get stepStride(): number {
    return this.stride;
  }

  /** Events `replay` will visit. */
  get size(): number {
    return this.sampled + this.others.length + (this.isLastStepSampled() ? 0 : 1);
  }

  /** Visits the kept events in stream order. */
  replay(visit: (event: StreamEvent) => void): void {
    const extra = this.isLastStepSampled() ? 0 : 1;
    const stepTotal = this.sampled + extra;
    let s = 0;
    let o = 0;
    while (s < stepTotal || o < this.others.length) {
      const stepSeq = s < this.sampled ? this.stepSeq[s]! : s < stepTotal ? this.lastStepSeq : Number.POSITIVE_INFINITY;
      const otherSeq = o < this.others.length ? this.otherSeq[o]! : Number.POSITIVE_INFINITY;
      if (stepSeq < otherSeq) {
        // s < sampled: a sampled step; otherwise the newest step (not null once a step was seen).
        visit(s < this.sampled ? this.steps[s]! : this.lastStep!);
        s++;
      } else {
        visit(this.others[o]!);
        o++;
      }
    }
  }

  /** The kept events in stream order, as a new array (the events themselves are shared, never changed). */
  snapshot(): StreamEvent[] {
    const events: StreamEvent[] = [];
    this.replay((event) => events.push(event));
    return events;
  }

  private isLastStepSampled(): boolean {
    return this.lastStep === null || (this.sampled > 0 && this.stepSeq[this.sampled - 1] === this.lastStepSeq);
  }

  /** Keeps samples 0, 2, 4, … (steps 0, 2k, 4k, …) and doubles the stride. */
  private halve(): void {
    const half = this.maxSteps / 2;
    for (let i = 0; i < half; i++) {
      this.steps[i] = this.steps[2 * i]!;
      this.stepSeq[i] = this.stepSeq[2 * i]!;
    }
    this.steps.fill(null, half);
    this.sampled = half;
    this.stride *= 2;
  }

  private trimOthers(): void {
    const drop = Math.floor(MAX_OTHER_EVENTS / 10);
    const keptEvents: StreamEvent[] = [];
    const keptSeq: number[] = [];
    for (let i = 0; i < drop; i++) {
      if (this.others[i]!.type === 'run') {
        keptEvents.push(this.others[i]!);
        keptSeq.push(this.otherSeq[i]!);
      }
    }
    this.others.splice(0, drop, ...keptEvents);
    this.otherSeq.splice(0, drop, ...keptSeq);
  }
}
