// Busy polling between steps (dpt worker --poll MS): after answering, the worker keeps its event
// loop spinning (setImmediate: libuv then polls the socket without sleeping) for a while, so the
// next step finds it running. On a VM, waking a process whose CPU has gone idle costs tens of µs,
// more than a small step's compute; MPI's and NCCL's progress loops busy-poll for the same reason.
// It costs that CPU's time, so it is for workers that have a CPU of their own.

export class BusyPoll {
  private readonly windowMs: number;
  private until = 0;
  private spinning = false;
  private readonly spin = (): void => {
    if (performance.now() < this.until) setImmediate(this.spin);
    else this.spinning = false;
  };

  /** `windowMs` 0 turns polling off. */
  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** Polls for the next `windowMs` ms from now (called after each answer). */
  extend(): void {
    if (this.windowMs <= 0) return;
    this.until = performance.now() + this.windowMs;
    if (!this.spinning) {
      this.spinning = true;
      setImmediate(this.spin);
    }
  }

  /** Stops polling (the connection is closing). */
  stop(): void {
    this.until = 0;
  }
}
