// Scatter and gather of one job at a time (a training step or a data pass) over the ready
// workers: assigns the job's units (a step's chunks in sticky ranges aligned to the reduction
// tree, a pass's blocks in slices), keeps the first copy of each unit (a step's parts arrive as
// subtrees of the tree, shared/reduce.ts), recomputes what a lost worker owed, backs up stragglers, drops
// workers past the step timeout, and waits (bounded) when no worker is left. It knows nothing
// of what the units compute; the trainer does. It also judges workers' faults: bad data stops the
// run, and the same fault over and over without progress stops it too (never a re-admit loop).
// A relay (relay/) runs one too, over its group, for the share of a job its coordinator gave it.

import { type DatasetError, NoWorkersError, ProtocolError } from '../shared/errors.js';
import type { TrainingEvent } from '../shared/events.js';
import type { PartMessage, PassPartMessage } from '../shared/protocol.js';
import { type ChunkParts, subtreeEnd, subtreeStart, TreeParts, treeLevels } from '../shared/reduce.js';
import { weightedAlignedShares } from './assignment.js';
import type { CoordinatorConfig } from './config.js';
import type { JoinGoal } from './join-goal.js';
import type { WorkerConnection, WorkerListener, WorkerServer } from './server.js';

/** Units of a job for one worker, ascending. */
export interface Assignment {
  readonly worker: WorkerConnection;
  readonly units: number[];
}

/** A unit of work to scatter: `units` units, each with a known row count and a part width. */
interface JobBase {
  /** The step number for steps, a pass number for passes: parts must name it. */
  readonly id: number;
  readonly units: number;
  /** Rows units [first, end) cover (each part's row counts are checked against it). */
  unitRows(first: number, end: number): number;
  /** Sends these assignments of this job: all at once, so a step can encode its message once for all. */
  send(assignments: readonly Assignment[]): void;
  /** A short name for log lines: "step 12", "feature statistics over the 1,000 training rows". */
  readonly label: string;
  /**
   * The units of this job when not all of [0, units) are (a relay's share): ascending ids; the
   * others count as done (TreeParts/ChunkParts reset with them). Unset: every unit.
   */
  readonly only?: readonly number[];
  /**
   * Passes only: units a worker may hold at once. The job is then handed out pull-based, this
   * many units at a time, the next slice when the worker answers (issue #10 item 13). Unset:
   * every unit goes out at once in even shares (steps).
   */
  readonly maxUnitsPerWorker?: number;
}

/** What the scatter needs of a step's subtree values: which chunks are covered (TreeParts, SparseTreeParts). */
export type StepParts = Pick<TreeParts, 'reset' | 'has' | 'pending'>;

/** A training step: chunks, reduced along the tree (dense values in a TreeParts, or others through acceptSubtree). */
export interface StepJobSpec<P extends StepParts = TreeParts> extends JobBase {
  readonly kind: 'step';
  readonly parts: P;
  /**
   * For parts other than a TreeParts (a sparse run's, issue #13): keeps subtree k of `message`
   * (checked: it exists and was this worker's) as node (level, index) when none of its chunks is
   * covered yet; returns whether it was kept.
   */
  readonly acceptSubtree?: (level: number, index: number, message: PartMessage, k: number) => boolean;
}

/** A data pass: blocks, merged in block order. */
export interface PassJobSpec extends JobBase {
  readonly kind: 'pass';
  readonly parts: ChunkParts;
  /** Called after each part that adds rows, with the rows covered so far (a pass's progress; a few calls per pass). */
  readonly onProgress?: (rowsDone: number) => void;
}

export type JobSpec = StepJobSpec<StepParts> | PassJobSpec;

/** A finished job: who contributed and how many rows its accepted parts covered. */
export interface JobResult {
  readonly contributors: number;
  readonly rowsAccounted: number;
}

/** What the scatter needs of a coordinator's (or a relay's) configuration. */
export type ScatterConfig = Pick<CoordinatorConfig, 'joinTimeoutMs' | 'stepTimeoutMs' | 'rejoinTimeoutMs' | 'backupFactor'>;

interface JobInFlight {
  readonly spec: JobSpec;
  /** This job's number among the scatter's runs: answers to an earlier run's messages are stale. */
  readonly run: number;
  /** Units of the job (spec.only's length, else spec.units). */
  readonly unitCount: number;
  readonly startedAt: number;
  /** Per contributing connection, the workers it stands for (a relay's part says how many of its group computed it). */
  readonly contributors: Map<number, number>;
  rowsAccounted: number;
  deadline: NodeJS.Timeout | undefined;
  backupTimer: NodeJS.Timeout | undefined;
  waitingSince: number | null;
  resolve: () => void;
  reject: (error: Error) => void;
}

const NOBODY = -1;
/** Backups are not worth launching for jobs shorter than this. */
const MIN_BACKUP_DELAY_MS = 20;
/**
 * Workers closed for the same fault this many times with no job completed in between stop the
 * run: a fault that follows the work from worker to worker is not the workers' (issue #10 item 6:
 * 2,381 kick-and-rejoin cycles in 100 s). Faults that differ, or progress, start the count afresh.
 */
export const MAX_REPEATED_FAULTS = 5;

export class Scatter implements WorkerListener {
  private readonly config: ScatterConfig;
  private readonly emit: (event: TrainingEvent) => void;
  private readonly log: (line: string) => void;
  private server: WorkerServer | null = null;
  /** Worker id each unit of the job in flight is assigned to, or NOBODY. */
  private readonly owner: Int32Array;
  /** Worker id computing a backup copy of each unit, or NOBODY. */
  private readonly backup: Int32Array;
  /**
   * Per worker, the run of each job message sent to it and not yet answered, oldest first: a
   * worker with some is busy. A worker (and a relay) answers its messages one part each, in order,
   * so the head says which run an answer belongs to; an earlier run's answer is stale and ignored,
   * even when it names the same step (a relay may hold several jobs of one step: issue #11 item 3).
   */
  private readonly outstanding = new Map<number, number[]>();
  private runs = 0;
  private job: JobInFlight | null = null;
  private joinWaiter: (() => void) | null = null;
  private isFinished = false;
  private onPartAccepted: (workerId: number, rows: number) => void = () => undefined;
  /** Backup tasks launched: by default a log line each (a relay's); a coordinator counts them (setBackupListener). */
  private onBackups: (label: string, chunks: number, workers: number) => void = (label, chunks, workers) => this.log(describeBackups(label, chunks, workers));
  /** The coordinator's own verdict on a content block a worker's data failed (null: its copy passes). */
  private readonly checkDataBlock: (block: number) => DatasetError | null;
  /** Workers closed per fault (its message) since the last completed job. */
  private readonly faults = new Map<string, number>();
  /** Set once the run cannot go on (bad data, a fault that recurs): every wait and job rejects with it. */
  private fatal: Error | null = null;
  private joinFailed: ((error: Error) => void) | null = null;

  constructor(
    config: ScatterConfig,
    maxUnits: number,
    emit: (event: TrainingEvent) => void,
    log: (line: string) => void,
    checkDataBlock: (block: number) => DatasetError | null = () => null,
  ) {
    this.config = config;
    this.emit = emit;
    this.log = log;
    this.checkDataBlock = checkDataBlock;
    this.owner = new Int32Array(maxUnits);
    this.backup = new Int32Array(maxUnits);
  }

  attach(server: WorkerServer): void {
    this.server = server;
  }

  /** Called for each accepted part with the worker's id and the rows it added; on the hot path, so it must not allocate. */
  setPartListener(listener: (workerId: number, rows: number) => void): void {
    this.onPartAccepted = listener;
  }

  /** Called each time straggling units of a job are also given to idle workers, instead of a log line. */
  setBackupListener(listener: (label: string, chunks: number, workers: number) => void): void {
    this.onBackups = listener;
  }

  /** After this, departures are no longer news (the coordinator is closing the connections). */
  finish(): void {
    this.isFinished = true;
  }

  /**
   * Waits until every worker of `goal` that can still join is ready (bounded by the join
   * timeout). Fails at once when fewer than its minimum can ever join; at the timeout, starts with
   * those ready if they reach the minimum, else fails.
   */
  async waitForWorkers(goal: JoinGoal): Promise<void> {
    const server = this.requireServer();
    if (this.fatal !== null) throw this.fatal;
    const unreachable = (): NoWorkersError =>
      new NoWorkersError(`${goal.lost} of ${goal.total} workers exited before joining; fewer than the ${goal.minimum} needed (--min-workers) can join`);
    if (goal.isUnreachable) throw unreachable();
    // Workers behind relays count: a relay of 16 is 16 of --workers.
    const readyCount = (): number => capacityOf(server.readyWorkers());
    if (readyCount() >= goal.wanted) return;
    await new Promise<void>((resolve, reject) => {
      const done = (error: Error | null): void => {
        clearTimeout(timer);
        this.joinWaiter = null;
        this.joinFailed = null;
        goal.setListener(() => undefined);
        if (error === null) resolve();
        else reject(error);
      };
      const timer = setTimeout(() => {
        const ready = readyCount();
        if (ready >= goal.minimum && ready > 0) {
          this.log(`starting with ${ready} of ${goal.wanted} workers: the others did not join within ${this.config.joinTimeoutMs} ms`);
          done(null);
        } else done(new NoWorkersError(`only ${ready} of ${goal.wanted} workers joined within ${this.config.joinTimeoutMs} ms`));
      }, this.config.joinTimeoutMs);
      this.joinWaiter = () => {
        if (goal.isUnreachable) done(unreachable());
        else if (readyCount() >= goal.wanted) done(null);
      };
      this.joinFailed = (error) => done(error);
      goal.setListener(() => this.joinWaiter?.());
    });
  }

  /** Scatters `spec` and resolves once every unit's part is in. */
  run(spec: JobSpec): Promise<JobResult> {
    if (this.fatal !== null) return Promise.reject(this.fatal);
    spec.parts.reset(spec.units, spec.only);
    this.owner.fill(NOBODY, 0, spec.units);
    this.backup.fill(NOBODY, 0, spec.units);
    return new Promise<JobResult>((resolve, reject) => {
      const job: JobInFlight = {
        spec,
        run: ++this.runs,
        unitCount: spec.only?.length ?? spec.units,
        startedAt: performance.now(),
        contributors: new Map(),
        rowsAccounted: 0,
        deadline: undefined,
        backupTimer: undefined,
        waitingSince: null,
        resolve: () => {
          clearTimeout(job.deadline);
          clearTimeout(job.backupTimer);
          this.job = null;
          this.faults.clear(); // progress: faults seen so far did not stall the run
          let contributors = 0;
          for (const workers of job.contributors.values()) contributors += workers;
          resolve({ contributors, rowsAccounted: job.rowsAccounted });
        },
        reject: (error) => {
          clearTimeout(job.deadline);
          clearTimeout(job.backupTimer);
          this.job = null;
          reject(error);
        },
      };
      this.job = job;
      this.assignUnowned();
    });
  }

  /**
   * Assigns every pending unit without an owner. A step's chunks, all unowned at its start, go
   * to every ready worker (sorted by capacity, largest first, then id) in ranges aligned to the
   * reduction tree and weighted by capacity (a relay's workers), a function of (chunks, workers,
   * capacities) alone: while the membership is unchanged a worker keeps its range from step to
   * step (issue #11). Units left over mid-job (a lost worker's) go in contiguous, even
   * shares to idle workers first: a straggler still busy is skipped.
   */
  private assignUnowned(): void {
    const job = this.job;
    if (job === null) return;
    const { spec } = job;
    const unowned: number[] = [];
    for (let u = 0; u < spec.units; u++) {
      if (!spec.parts.has(u) && this.owner[u] === NOBODY) unowned.push(u);
    }
    if (unowned.length === 0) return;
    const ready = this.requireServer().readyWorkers();
    if (ready.length === 0) {
      this.waitForRejoin(job);
      return;
    }
    job.waitingSince = null;
    if (spec.maxUnitsPerWorker !== undefined) {
      this.assignSlices(job, ready, unowned, spec.maxUnitsPerWorker);
      this.armDeadline(job);
      return;
    }
    const assignments: Assignment[] = [];
    if (spec.kind === 'step' && unowned.length === job.unitCount) {
      // Shares of the job's units in order: aligned to the tree when the units are one aligned
      // range (a whole step, or the subtree a relay holds).
      const workers = [...ready].sort((a, b) => b.capacity - a.capacity || a.id - b.id);
      const bounds = weightedAlignedShares(
        unowned.length,
        workers.map((worker) => worker.capacity),
      );
      for (let i = 0; i < workers.length; i++) {
        if (bounds[i]! < bounds[i + 1]!) assignments.push({ worker: workers[i]!, units: unowned.slice(bounds[i]!, bounds[i + 1]!) });
      }
    } else {
      const idle = ready.filter((worker) => this.pendingAnswers(worker.id) === 0);
      const workers = idle.length > 0 ? idle : ready;
      const shares = Math.min(workers.length, unowned.length);
      for (let i = 0; i < shares; i++) {
        const mine = unowned.slice(Math.floor((i * unowned.length) / shares), Math.floor(((i + 1) * unowned.length) / shares));
        assignments.push({ worker: workers[i]!, units: mine }); // i < shares <= workers.length
      }
    }
    for (const { worker, units } of assignments) for (const u of units) this.owner[u] = worker.id;
    this.sendUnits(spec, assignments);
    this.armDeadline(job);
  }

  /**
   * Pull-based assignment: each ready worker that holds none of the job's units gets the next
   * `slice` unowned ones, in unit order. A worker never holds more than `slice` units, so a slow
   * pass share cannot outlast a heartbeat by its size alone and a worker that joins or rejoins
   * mid-pass is not handed everything that is left.
   */
  private assignSlices(job: JobInFlight, ready: WorkerConnection[], unowned: number[], slice: number): void {
    const held = new Set<number>();
    for (let u = 0; u < job.spec.units; u++) {
      if (job.spec.parts.has(u)) continue;
      if (this.owner[u] !== NOBODY) held.add(this.owner[u]!);
      if (this.backup[u] !== NOBODY) held.add(this.backup[u]!);
    }
    let next = 0;
    const assignments: Assignment[] = [];
    for (const worker of ready) {
      if (next >= unowned.length) break;
      if (held.has(worker.id)) continue;
      const mine = unowned.slice(next, next + slice * worker.capacity); // a relay's group shares its slices
      next += mine.length;
      for (const u of mine) this.owner[u] = worker.id;
      assignments.push({ worker, units: mine });
    }
    this.sendUnits(job.spec, assignments);
  }

  private sendUnits(spec: JobSpec, assignments: readonly Assignment[]): void {
    if (assignments.length === 0) return;
    const run = this.runs;
    for (const { worker } of assignments) {
      const runs = this.outstanding.get(worker.id);
      if (runs === undefined) this.outstanding.set(worker.id, [run]);
      else runs.push(run);
    }
    spec.send(assignments);
  }

  /** After --step-timeout without completion, workers that still owe units are dropped. */
  private armDeadline(job: JobInFlight): void {
    clearTimeout(job.deadline);
    job.deadline = setTimeout(() => {
      const late = new Set<number>();
      for (let u = 0; u < job.spec.units; u++) {
        if (job.spec.parts.has(u)) continue;
        if (this.owner[u] !== NOBODY) late.add(this.owner[u]!);
        if (this.backup[u] !== NOBODY) late.add(this.backup[u]!);
      }
      const server = this.requireServer();
      for (const worker of server.readyWorkers(true)) {
        if (late.has(worker.id)) server.drop(worker, `no part for ${job.spec.label} within ${this.config.stepTimeoutMs} ms`);
      }
    }, this.config.stepTimeoutMs);
  }

  /**
   * Backup tasks (as MapReduce does for stragglers): once a worker has answered its share and
   * units are still pending elsewhere, wait backupFactor × the time it took, then give those
   * units also to idle workers. The first copy of a unit wins; the other is ignored.
   */
  private scheduleBackups(job: JobInFlight): void {
    if (this.config.backupFactor === 0 || job.backupTimer !== undefined) return;
    const firstMs = performance.now() - job.startedAt;
    const delayMs = Math.max(MIN_BACKUP_DELAY_MS, (this.config.backupFactor - 1) * firstMs);
    job.backupTimer = setTimeout(() => this.launchBackups(job), delayMs);
  }

  private launchBackups(job: JobInFlight): void {
    if (this.job !== job) return;
    const idle = this.requireServer()
      .readyWorkers()
      .filter((worker) => this.pendingAnswers(worker.id) === 0);
    const pending: number[] = [];
    for (let u = 0; u < job.spec.units; u++) {
      if (!job.spec.parts.has(u) && this.owner[u] !== NOBODY && this.backup[u] === NOBODY) pending.push(u);
    }
    // A pull-based job may need backups again later (its tail): the next answer re-arms the timer.
    const slice = job.spec.maxUnitsPerWorker;
    if (slice !== undefined) job.backupTimer = undefined;
    if (idle.length === 0 || pending.length === 0) return;
    const shares = Math.min(idle.length, pending.length);
    let given = 0;
    const assignments: Assignment[] = [];
    for (let i = 0; i < shares; i++) {
      const worker = idle[i]!; // i < shares <= idle.length
      const first = Math.floor((i * pending.length) / shares);
      const mine = pending.slice(first, Math.min(first + (slice ?? pending.length), Math.floor(((i + 1) * pending.length) / shares)));
      for (const u of mine) this.backup[u] = worker.id;
      assignments.push({ worker, units: mine });
      given += mine.length;
    }
    this.sendUnits(job.spec, assignments);
    this.onBackups(job.spec.label, given, shares);
  }

  private waitForRejoin(job: JobInFlight): void {
    if (job.waitingSince !== null) return;
    job.waitingSince = Date.now();
    this.log(`no worker left at ${job.spec.label}; waiting up to ${this.config.rejoinTimeoutMs} ms for one to join`);
    clearTimeout(job.deadline);
    job.deadline = setTimeout(() => {
      job.reject(new NoWorkersError(`no worker was available for ${job.spec.label} for ${this.config.rejoinTimeoutMs} ms`));
    }, this.config.rejoinTimeoutMs);
  }

  workerReady(worker: WorkerConnection): void {
    const workers = capacityOf(this.requireServer().readyWorkers());
    this.emit({
      type: 'worker',
      event: 'joined',
      workerId: worker.id,
      address: worker.address,
      reason: 'handshake complete',
      workers,
      time: Date.now(),
      ...(worker.kernel === null ? {} : { kernel: worker.kernel }),
    });
    this.joinWaiter?.();
    // A worker that joins mid-job only takes units nobody owns (those of a lost worker while
    // none was left); otherwise it gets work from the next job on.
    this.assignUnowned();
  }

  /**
   * A welcomed worker is being closed for a fault. When its data failed a check (`dataBlock`), the
   * coordinator checks that block of its own copy: failing here too, the data is bad and the run
   * stops with that DatasetError (exit 2, naming file, block and row); passing here, only that
   * worker's copy is bad and only it is refused. A fault (a failure the worker reports, or a part
   * with a non-finite value; the server does not report malformed messages) that recurs MAX_REPEATED_FAULTS times
   * without a job completing stops the run instead of re-admitting workers that fail the same way.
   */
  workerFaulted(worker: WorkerConnection, reason: string, dataBlock: number | null): void {
    if (this.fatal !== null) return;
    if (dataBlock !== null) {
      const problem = this.checkDataBlock(dataBlock);
      if (problem !== null) {
        this.log(`worker ${worker.id} found bad data, and the coordinator's copy fails the same check: stopping the run`);
        this.stop(problem);
        return;
      }
      // That worker's own fault: it exits; counting it could let one bad host stop a healthy run.
      this.log(`worker ${worker.id}'s copy of the data fails content block ${dataBlock}; the coordinator's copy passes: refusing that worker only`);
      return;
    }
    const count = (this.faults.get(reason) ?? 0) + 1;
    this.faults.set(reason, count);
    if (count >= MAX_REPEATED_FAULTS) {
      this.stop(
        new NoWorkersError(
          `${count} workers were closed for the same fault with no progress in between, so it is not theirs; stopping instead of re-admitting them: ${reason}`,
        ),
      );
    }
  }

  /** Ends the run: the job in flight and any wait for workers reject with `error`, and so does every later job (also the API's abort). */
  stop(error: Error): void {
    this.fatal = error;
    this.joinFailed?.(error);
    this.job?.reject(error);
  }

  /**
   * A relay's group grew or shrank. From 0 it is like a join (it may take units nobody owns, and
   * counts towards the workers awaited); any change weighs its share from the next step on. Units
   * it owns stay its own: a relay left with none of its workers gives them up by leaving.
   */
  workerCapacity(worker: WorkerConnection, before: number): void {
    if (before === 0 && worker.capacity > 0) {
      this.joinWaiter?.();
      this.assignUnowned();
    } else this.joinWaiter?.();
  }

  /**
   * Abandons the job in flight, rejecting it with `error` (a relay whose coordinator went away):
   * answers to its messages that still arrive are stale and ignored. Not a fault of the run.
   */
  cancel(error: Error): void {
    this.job?.reject(error);
  }

  /** The error that ended the run (bad data, a recurring fault), or null while it can go on. */
  get failure(): Error | null {
    return this.fatal;
  }

  workerLost(worker: WorkerConnection, reason: string): void {
    this.outstanding.delete(worker.id);
    const workers = capacityOf(this.requireServer().readyWorkers());
    if (!this.isFinished) this.log(`${worker.label} left: ${reason}`);
    this.emit({ type: 'worker', event: 'left', workerId: worker.id, address: worker.address, reason, workers, time: Date.now() });
    const job = this.job;
    if (job === null) return;
    let owed = 0;
    for (let u = 0; u < job.spec.units; u++) {
      if (job.spec.parts.has(u)) continue;
      if (this.backup[u] === worker.id) this.backup[u] = NOBODY;
      if (this.owner[u] === worker.id) {
        // The backup copy, if any, becomes the unit's owner; else the unit is reassigned.
        this.owner[u] = this.backup[u]!;
        this.backup[u] = NOBODY;
        if (this.owner[u] === NOBODY) owed++;
      }
    }
    if (owed > 0) {
      this.log(`recomputing ${owed} chunk(s) of ${job.spec.label} that ${worker.label} owed`);
      this.assignUnowned();
    }
  }

  part(worker: WorkerConnection, message: PartMessage): void {
    const job = this.answered(worker);
    // A part for another step (a late answer) is discarded: never counted twice.
    if (job === null || job.spec.kind !== 'step' || message.step !== job.spec.id) return;
    this.acceptSubtrees(worker, job, job.spec, message);
  }

  passPart(worker: WorkerConnection, message: PassPartMessage): void {
    const job = this.answered(worker);
    if (job === null || job.spec.kind !== 'pass' || message.job !== job.spec.id) return;
    if (message.sums.length !== message.blocks.length * job.spec.parts.width) {
      throw new ProtocolError('passPart', 'sums', `expected ${message.blocks.length} × ${job.spec.parts.width} values, got ${message.sums.length}`);
    }
    this.acceptBlocks(worker, job, job.spec, message);
    // Pull-based: the worker holds nothing now; it (and any other idle one) takes the next slice.
    if (this.job === job && job.spec.maxUnitsPerWorker !== undefined) this.assignUnowned();
  }

  /**
   * Counts an answer from `worker` and returns the job in flight, or null when the answer belongs
   * to an earlier run (its message was sent for a job that has ended). An answer beyond those
   * owed is checked against the job in flight like any other.
   */
  private answered(worker: WorkerConnection): JobInFlight | null {
    const run = this.outstanding.get(worker.id)?.shift();
    const job = this.job;
    if (job === null || (run !== undefined && run !== job.run)) return null;
    return job;
  }

  /** Job messages sent to this worker and not answered yet. */
  private pendingAnswers(workerId: number): number {
    return this.outstanding.get(workerId)?.length ?? 0;
  }

  /**
   * Keeps each subtree of a step's part whose chunks are all still uncovered (shared/reduce.ts);
   * a subtree overlapping covered chunks (a backup's copy, or a range cut another way) is
   * ignored, and its chunks still uncovered are released by this worker and reassigned, so they
   * are neither counted twice nor waited for forever.
   */
  private acceptSubtrees(worker: WorkerConnection, job: JobInFlight, spec: StepJobSpec<StepParts>, message: PartMessage): void {
    const { subtrees, rows } = message;
    const levels = treeLevels(spec.units);
    // Check the whole part before any of it touches state.
    for (let k = 0; k < subtrees.length; k += 2) {
      const level = subtrees[k]!;
      const index = subtrees[k + 1]!;
      const start = subtreeStart(level, index);
      if (level > levels || start >= spec.units) {
        throw new ProtocolError('part', 'subtrees', `(${level}, ${index}) is not a subtree of ${spec.label}'s ${spec.units}-chunk tree`);
      }
      const end = subtreeEnd(level, index, spec.units);
      for (let u = start; u < end; u++) {
        if (this.owner[u] !== worker.id && this.backup[u] !== worker.id) {
          throw new ProtocolError('part', 'subtrees', `chunk ${u} of ${spec.label} was not assigned to worker ${worker.id}`);
        }
      }
      const expected = spec.unitRows(start, end);
      if (rows[k / 2] !== expected)
        throw new ProtocolError('part', 'rows', `subtree (${level}, ${index}) of ${spec.label} has ${expected} rows, the part says ${rows[k / 2]}`);
    }
    const rowsBefore = job.rowsAccounted;
    let released = 0;
    for (let k = 0; k < subtrees.length; k += 2) {
      const level = subtrees[k]!;
      const index = subtrees[k + 1]!;
      if (acceptSubtree(spec, level, index, message, k / 2)) {
        job.rowsAccounted += rows[k / 2]!;
        continue;
      }
      for (let u = subtreeStart(level, index); u < subtreeEnd(level, index, spec.units); u++) {
        if (spec.parts.has(u)) continue;
        if (this.backup[u] === worker.id) this.backup[u] = NOBODY;
        if (this.owner[u] === worker.id) {
          this.owner[u] = this.backup[u]!;
          this.backup[u] = NOBODY;
          if (this.owner[u] === NOBODY) released++;
        }
      }
    }
    job.contributors.set(worker.id, Math.max(job.contributors.get(worker.id) ?? 0, message.workers ?? 1));
    if (job.rowsAccounted > rowsBefore) this.onPartAccepted(worker.id, job.rowsAccounted - rowsBefore);
    if (spec.parts.pending === 0) job.resolve();
    else {
      if (released > 0) {
        this.log(`${spec.label}: ${released} chunk(s) overlapped parts already in and are recomputed`);
        this.assignUnowned();
      }
      if (this.pendingAnswers(worker.id) === 0) this.scheduleBackups(job);
    }
  }

  /** Keeps the first copy of each block of a pass's part. */
  private acceptBlocks(worker: WorkerConnection, job: JobInFlight, spec: PassJobSpec, message: PassPartMessage): void {
    const { blocks: units, rows, sums } = message;
    // Check the whole part before any of it touches state.
    for (let i = 0; i < units.length; i++) {
      const u = units[i]!;
      if (u >= spec.units || (this.owner[u] !== worker.id && this.backup[u] !== worker.id)) {
        throw new ProtocolError('passPart', 'blocks', `unit ${u} of ${spec.label} was not assigned to worker ${worker.id}`);
      }
      const expected = spec.unitRows(u, u + 1);
      if (rows[i] !== expected) throw new ProtocolError('passPart', 'rows', `unit ${u} of ${spec.label} has ${expected} rows, the part says ${rows[i]}`);
    }
    const width = spec.parts.width;
    const rowsBefore = job.rowsAccounted;
    for (let i = 0; i < units.length; i++) {
      if (spec.parts.accept(units[i]!, sums, i * width)) job.rowsAccounted += rows[i]!;
    }
    if (job.rowsAccounted > rowsBefore) spec.onProgress?.(job.rowsAccounted);
    job.contributors.set(worker.id, Math.max(job.contributors.get(worker.id) ?? 0, worker.capacity));
    if (spec.parts.pending === 0) job.resolve();
    else if (this.pendingAnswers(worker.id) === 0) this.scheduleBackups(job);
  }

  private requireServer(): WorkerServer {
    if (this.server === null) throw new Error('Scatter used before attach(server)');
    return this.server;
  }
}

/** The log line of one launch of backup tasks: "step 12: 4 straggling chunk(s) also given to 1 idle worker(s)". */
export function describeBackups(label: string, chunks: number, workers: number): string {
  return `${label}: ${chunks} straggling chunk(s) also given to ${workers} idle worker(s)`;
}

/** Keeps subtree k of `message` as node (level, index) of the step's parts, if none of its chunks is covered; returns whether it did. */
function acceptSubtree(spec: StepJobSpec<StepParts>, level: number, index: number, message: PartMessage, k: number): boolean {
  const { parts } = spec;
  if (parts instanceof TreeParts) return parts.accept(level, index, message.sums, k * parts.width);
  if (spec.acceptSubtree === undefined) throw new Error(`invariant broken: ${spec.label} has no way to keep its parts`);
  return spec.acceptSubtree(level, index, message, k);
}

/** Workers the connections stand for: a worker 1, a relay its capacity. */
function capacityOf(connections: readonly WorkerConnection[]): number {
  let capacity = 0;
  for (const connection of connections) capacity += connection.capacity;
  return capacity;
}
