import { JobCancelledError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { JobPriority, QueueDepth, SchedulerStats } from "./llm.js";

export interface AdmissionRequest {
  /** What the work is, such as "sentiment", "task:intent" or "chat": named in errors and logs. */
  readonly kind: string;
  /** Interactive work (mentions, commands) goes first; background work fills the rest. */
  readonly priority: JobPriority;
  /** Background fairness group, such as a guild id: groups are served round-robin. */
  readonly group?: string;
  /** Background work shed only once no other background work is left to shed (moderation, before reactions). */
  readonly shedLast?: boolean;
  /** A reply or a text task: counted as `chat` in the queue depth, whatever its priority. */
  readonly generation?: boolean;
  readonly signal?: AbortSignal;
}

export interface AdmissionOptions {
  readonly logger: Logger;
  /** Work that may run at once; with more than one, the last free place is kept for interactive work. */
  readonly maxInFlight: number;
  /** Background jobs beyond this many waiting are shed: the busiest group's oldest first. */
  readonly maxBackgroundQueue: number;
  /** A background job that waited longer than this is shed when its turn comes: a late reaction is noise. */
  readonly maxBackgroundAgeMs: number;
  readonly now?: () => number;
}

interface Waiting {
  readonly kind: string;
  readonly group: string;
  readonly shedLast: boolean;
  readonly generation: boolean;
  readonly background: boolean;
  readonly enqueuedAt: number;
  /** Leaves the queue and runs the work. */
  start(): void;
  /** Leaves the queue without running: counted as cancelled, and its caller gets a JobCancelledError. */
  cancel(reason: string): void;
}

interface Running {
  readonly kind: string;
  readonly controller: AbortController;
  /** Settles once the work has settled and its place is free again. */
  readonly done: Promise<void>;
}

const DEFAULT_GROUP = "";

/**
 * Who may use the model next, for a runtime that batches on its own (an inference server): a bounded number of
 * requests in flight, interactive work first, background work round-robin between groups and shed under overload.
 * The queue policy is the in-process Scheduler's (same shedding, same errors, same stats), without its passes.
 */
export class Admission {
  private readonly interactive: Waiting[] = [];
  /** Background jobs by group, in round-robin order: a group that was served moves to the back. */
  private readonly background = new Map<string, Waiting[]>();
  private backgroundCount = 0;
  private readonly running = new Set<Running>();
  private maxInFlight = 1;
  private closedReason: string | undefined;
  private readonly now: () => number;
  private readonly counts: SchedulerStats = {
    completed: 0,
    failed: 0,
    shedFull: 0,
    shedStale: 0,
    cancelled: 0,
    passes: 0,
    sharedPasses: 0,
  };

  constructor(private readonly options: AdmissionOptions) {
    this.now = options.now ?? (() => performance.now());
    this.setMaxInFlight(options.maxInFlight);
  }

  /** Runs `work` once a place is free; its signal aborts when the caller's does or on close. */
  run<T>(request: AdmissionRequest, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const { kind, signal } = request;
    if (this.closedReason !== undefined)
      return Promise.reject(new JobCancelledError(kind, this.closedReason));
    if (signal?.aborted) return Promise.reject(new JobCancelledError(kind, "aborted before it was queued"));
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => {
        if (!this.remove(job)) return;
        this.counts.cancelled++;
        reject(new JobCancelledError(kind, "aborted while waiting"));
      };
      const job: Waiting = {
        kind,
        group: request.group ?? DEFAULT_GROUP,
        shedLast: request.shedLast === true,
        generation: request.generation === true,
        background: request.priority === "background",
        enqueuedAt: this.now(),
        start: () => {
          signal?.removeEventListener("abort", onAbort);
          this.execute(kind, signal, work).then(resolve, reject);
        },
        cancel: (reason) => {
          signal?.removeEventListener("abort", onAbort);
          this.counts.cancelled++;
          reject(new JobCancelledError(kind, reason));
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (job.background) this.enqueueBackground(job);
      else this.interactive.push(job);
      this.pump();
    });
  }

  /** Learned from the server (llama-server's total_slots): work already running goes on if it is now too much. */
  setMaxInFlight(n: number): void {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`maxInFlight must be a whole number of at least 1, not ${n}`);
    this.maxInFlight = n;
    this.pump();
  }

  get stats(): Readonly<SchedulerStats> {
    return { ...this.counts };
  }

  /** Jobs waiting, by kind: what the queue-depth metric reports. */
  get queueDepth(): QueueDepth {
    const depth = { interactive: 0, background: 0, chat: 0 };
    for (const job of [...this.interactive, ...[...this.background.values()].flat()]) {
      if (job.generation) depth.chat++;
      else if (job.background) depth.background++;
      else depth.interactive++;
    }
    return depth;
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** Refuses new work, cancels what waits (JobCancelledError) and aborts the signal of what runs. */
  close(reason = "the model is shutting down"): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    const waiting = [...this.interactive.splice(0), ...[...this.background.values()].flat()];
    this.background.clear();
    this.backgroundCount = 0;
    for (const job of waiting) job.cancel(reason);
    for (const entry of this.running) entry.controller.abort(new JobCancelledError(entry.kind, reason));
  }

  /** Resolves once nothing runs and nothing waits. */
  async whenIdle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running].map((entry) => entry.done));
  }

  /** Background work never takes the last free place while there are several: a mention waits for one at most. */
  private get backgroundPlaces(): number {
    return this.maxInFlight > 1 ? this.maxInFlight - 1 : this.maxInFlight;
  }

  private pump(): void {
    if (this.closedReason !== undefined) return;
    while (this.running.size < this.maxInFlight) {
      const next =
        this.interactive.shift() ??
        (this.running.size < this.backgroundPlaces ? this.nextBackground() : undefined);
      if (!next) return;
      next.start();
    }
  }

  private async execute<T>(
    kind: string,
    callerSignal: AbortSignal | undefined,
    work: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(abortReason(kind, callerSignal));
    callerSignal?.addEventListener("abort", onAbort, { once: true });
    let freed = () => {};
    const entry: Running = { kind, controller, done: new Promise<void>((resolve) => (freed = resolve)) };
    this.running.add(entry);
    try {
      const result = await work(controller.signal);
      this.counts.completed++;
      return result;
    } catch (error) {
      // Work stopped by an abort fails with the abort's reason, as the in-process scheduler's generations do.
      const failure: unknown = controller.signal.aborted ? controller.signal.reason : error;
      if (failure instanceof JobCancelledError) this.counts.cancelled++;
      else this.counts.failed++;
      throw failure;
    } finally {
      callerSignal?.removeEventListener("abort", onAbort);
      this.running.delete(entry);
      this.pump();
      freed();
    }
  }

  private enqueueBackground(job: Waiting): void {
    const queue = this.background.get(job.group);
    if (queue) queue.push(job);
    else this.background.set(job.group, [job]);
    this.backgroundCount++;
    while (this.backgroundCount > this.options.maxBackgroundQueue) {
      const shed = this.takeFromBusiestGroup();
      if (!shed) break;
      this.counts.shedFull++;
      this.options.logger.debug(
        { jobKind: shed.kind, group: shed.group, queued: this.backgroundCount },
        "shed: queue full",
      );
      shed.cancel("shed: the background queue is full");
    }
  }

  /**
   * The oldest job of the group with the most waiting: one busy server cannot push out everyone else's work. Groups
   * of shed-last work (moderation) are taken from only when no other group is left.
   */
  private takeFromBusiestGroup(): Waiting | undefined {
    let busiest: Waiting[] | undefined;
    const last = (queue: readonly Waiting[]) => queue[0]?.shedLast === true;
    for (const queue of this.background.values()) {
      const better =
        !busiest ||
        (last(busiest) && !last(queue)) ||
        (last(busiest) === last(queue) && queue.length > busiest.length);
      if (better) busiest = queue;
    }
    const job = busiest?.[0];
    if (job) this.remove(job);
    return job;
  }

  /** The first group in the round with a fresh job takes its turn and moves to the back. */
  private nextBackground(): Waiting | undefined {
    for (const group of [...this.background.keys()]) {
      const job = this.freshHead(group);
      if (!job) continue;
      this.remove(job);
      const rest = this.background.get(group);
      if (rest) {
        this.background.delete(group);
        this.background.set(group, rest);
      }
      return job;
    }
    return undefined;
  }

  /** The group's oldest job that has not waited too long; staler ones are shed on the way. */
  private freshHead(group: string): Waiting | undefined {
    for (let job = this.background.get(group)?.[0]; job; job = this.background.get(group)?.[0]) {
      const waited = this.now() - job.enqueuedAt;
      if (waited <= this.options.maxBackgroundAgeMs) return job;
      this.remove(job);
      this.counts.shedStale++;
      this.options.logger.debug({ jobKind: job.kind, group, waitedMs: waited }, "shed: waited too long");
      job.cancel("shed: waited too long");
    }
    return undefined;
  }

  /** Takes a job out of the queue; false when it had already left it. */
  private remove(job: Waiting): boolean {
    if (removeFrom(this.interactive, job)) return true;
    const queue = this.background.get(job.group);
    if (!queue || !removeFrom(queue, job)) return false;
    this.backgroundCount--;
    if (queue.length === 0) this.background.delete(job.group);
    return true;
  }
}

function abortReason(kind: string, signal: AbortSignal | undefined): unknown {
  const reason = signal?.reason;
  return reason instanceof Error ? reason : new JobCancelledError(kind, "aborted while running");
}

function removeFrom<T>(list: T[], item: T): boolean {
  const index = list.indexOf(item);
  if (index < 0) return false;
  list.splice(index, 1);
  return true;
}
