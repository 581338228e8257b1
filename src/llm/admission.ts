import { setMaxListeners } from "node:events";
import { JobCancelledError } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import { BackgroundQueue } from "./backgroundQueue.js";
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
/** Requests one admitted piece of work may have in flight at once on its signal. */
const FAN_OUT_LISTENERS = 256;

/**
 * Who may use the model next, for a runtime that batches on its own (an inference server): a bounded number of
 * requests in flight, interactive work first, background work round-robin between groups and shed under overload.
 * The queue policy is the in-process Scheduler's (same shedding, same errors, same stats), without its passes.
 */
export class Admission {
  private readonly interactive: Waiting[] = [];
  private readonly background: BackgroundQueue<Waiting>;
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

  constructor(options: AdmissionOptions) {
    this.now = options.now ?? (() => performance.now());
    this.background = new BackgroundQueue<Waiting>({
      logger: options.logger,
      maxSize: options.maxBackgroundQueue,
      maxAgeMs: options.maxBackgroundAgeMs,
      now: this.now,
      onShed: (job, reason) => {
        if (reason === "full") this.counts.shedFull++;
        else this.counts.shedStale++;
        job.cancel(reason === "full" ? "shed: the background queue is full" : "shed: waited too long");
      },
    });
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
      if (job.background) this.background.push(job);
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
    for (const job of [...this.interactive, ...this.background.all()]) {
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
    const waiting = [...this.interactive.splice(0), ...this.background.drain()];
    for (const job of waiting) job.cancel(reason);
    for (const entry of this.running) entry.controller.abort(new JobCancelledError(entry.kind, reason));
  }

  /** Resolves once nothing runs and nothing waits. */
  async whenIdle(): Promise<void> {
    while (this.running.size > 0) await Promise.all([...this.running].map((entry) => entry.done));
  }

  private get backgroundPlaces(): number {
    return backgroundPlaces(this.maxInFlight);
  }

  private pump(): void {
    if (this.closedReason !== undefined) return;
    while (this.running.size < this.maxInFlight) {
      const next =
        this.interactive.shift() ??
        (this.running.size < this.backgroundPlaces ? this.background.takeNext() : undefined);
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
    // One piece of work may fan out into parallel requests on this signal (a prompt's pieces tokenised at once on
    // a server): more than Node's default of 10 listeners, and each request removes its own.
    setMaxListeners(FAN_OUT_LISTENERS, controller.signal);
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

  /** Takes a job out of the queue; false when it had already left it. */
  private remove(job: Waiting): boolean {
    return removeFrom(this.interactive, job) || this.background.remove(job);
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

/** Background work never takes the last free place while there are several: a mention waits for one at most. */
export function backgroundPlaces(maxInFlight: number): number {
  return maxInFlight > 1 ? maxInFlight - 1 : maxInFlight;
}
