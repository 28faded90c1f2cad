// How many workers a run waits for before its first step (issue #10 item 16): all it was told
// to expect, fewer as expected workers die before joining (dpt train sees its local processes
// exit), and at least a minimum, as Spark waits for its minimum registered resources.

export class JoinGoal {
  /** Workers the run was told to expect. */
  readonly total: number;
  /** Fewer than this many ready workers never start the run. */
  readonly minimum: number;
  private lostCount = 0;
  private listener: () => void = () => undefined;

  constructor(total: number, minimum: number) {
    this.total = total;
    this.minimum = Math.min(minimum, total);
  }

  /** Workers that can still join (expected and not known dead). */
  get wanted(): number {
    return this.total - this.lostCount;
  }

  /** Expected workers known to be gone before joining. */
  get lost(): number {
    return this.lostCount;
  }

  /** Whether the minimum can no longer be reached. */
  get isUnreachable(): boolean {
    return this.wanted < this.minimum;
  }

  /** One expected worker can no longer join (its process exited): the run stops waiting for it. */
  lose(): void {
    if (this.lostCount < this.total) this.lostCount++;
    this.listener();
  }

  /** Called on every change (the join wait re-checks). */
  setListener(listener: () => void): void {
    this.listener = listener;
  }
}
