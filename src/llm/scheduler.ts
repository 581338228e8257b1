import { JobCancelledError } from "../errors.js";
import type { Logger } from "../logger.js";

/** Interactive work (mentions, commands) always runs before background work (mood reactions). */
export type JobPriority = "interactive" | "background";

export interface SchedulerOptions {
  readonly logger: Logger;
  /** Background jobs beyond this many waiting are shed, oldest first. */
  readonly maxBackgroundQueue: number;
  /** A background job that waited longer than this is shed when its turn comes: a late reaction is noise. */
  readonly maxBackgroundAgeMs: number;
  readonly now?: () => number;
}

export interface SchedulerStats {
  completed: number;
  failed: number;
  shedFull: number;
  shedStale: number;
  cancelled: number;
}

interface QueuedJob {
  readonly kind: string;
  readonly enqueuedAt: number;
  /** Runs the task and settles the caller's promise; resolves when the model is free again. */
  readonly start: () => Promise<void>;
  readonly cancel: (reason: string) => void;
}

/**
 * Runs model jobs one at a time, by priority. Two cores are saturated by one forward pass, so running jobs side by
 * side only makes each one slower; ordering them is what keeps a mention fast while reactions pile up.
 */
export class Scheduler {
  private readonly interactive: QueuedJob[] = [];
  private readonly background: QueuedJob[] = [];
  private readonly shutdown = new AbortController();
  private running: Promise<void> | undefined;
  private readonly now: () => number;
  readonly stats: SchedulerStats = { completed: 0, failed: 0, shedFull: 0, shedStale: 0, cancelled: 0 };

  constructor(private readonly options: SchedulerOptions) {
    this.now = options.now ?? Date.now;
  }

  get closed(): boolean {
    return this.shutdown.signal.aborted;
  }

  get pending(): number {
    return this.interactive.length + this.background.length;
  }

  /**
   * Queues `task` and resolves with its result. The task receives a signal that aborts when the caller's signal
   * does or the scheduler closes. Rejects with JobCancelledError when the job is shed or cancelled before it runs.
   */
  run<T>(
    kind: string,
    priority: JobPriority,
    task: (signal: AbortSignal) => Promise<T>,
    callerSignal?: AbortSignal,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new JobCancelledError(kind, "the model is shutting down"));
    if (callerSignal?.aborted)
      return Promise.reject(new JobCancelledError(kind, "aborted before it was queued"));

    return new Promise<T>((resolve, reject) => {
      // Only the caller's signal is watched while waiting: close() cancels the whole queue itself, so queued jobs
      // add no listeners to the shared shutdown signal.
      const onAbort = () => {
        if (this.remove(job)) job.cancel("aborted while waiting");
      };
      const job: QueuedJob = {
        kind,
        enqueuedAt: this.now(),
        start: () => {
          callerSignal?.removeEventListener("abort", onAbort);
          const signal = callerSignal
            ? AbortSignal.any([callerSignal, this.shutdown.signal])
            : this.shutdown.signal;
          return Promise.resolve()
            .then(() => {
              // Closed or abandoned between leaving the queue and starting: do no model work.
              signal.throwIfAborted();
              return task(signal);
            })
            .then(
              (value) => {
                this.stats.completed++;
                resolve(value);
              },
              (error: unknown) => {
                this.stats.failed++;
                reject(error);
              },
            );
        },
        cancel: (reason) => {
          callerSignal?.removeEventListener("abort", onAbort);
          this.stats.cancelled++;
          reject(new JobCancelledError(kind, reason));
        },
      };
      callerSignal?.addEventListener("abort", onAbort, { once: true });
      if (priority === "interactive") {
        this.interactive.push(job);
      } else {
        this.background.push(job);
        while (this.background.length > this.options.maxBackgroundQueue) {
          const shed = this.background.shift();
          if (!shed) break;
          this.stats.shedFull++;
          this.options.logger.debug(
            { jobKind: shed.kind, queued: this.background.length },
            "shed: queue full",
          );
          shed.cancel("shed: the background queue is full");
        }
      }
      this.pump();
    });
  }

  /** Aborts the running job, cancels every queued one, and refuses new work. */
  close(reason = "the model is shutting down"): void {
    if (this.closed) return;
    this.shutdown.abort(new JobCancelledError("scheduler", reason));
    for (const job of [...this.interactive.splice(0), ...this.background.splice(0)]) job.cancel(reason);
  }

  private remove(job: QueuedJob): boolean {
    for (const queue of [this.interactive, this.background]) {
      const index = queue.indexOf(job);
      if (index >= 0) {
        queue.splice(index, 1);
        return true;
      }
    }
    return false;
  }

  private next(): QueuedJob | undefined {
    const interactive = this.interactive.shift();
    if (interactive) return interactive;
    for (let job = this.background.shift(); job; job = this.background.shift()) {
      const waited = this.now() - job.enqueuedAt;
      if (waited <= this.options.maxBackgroundAgeMs) return job;
      this.stats.shedStale++;
      this.options.logger.debug({ jobKind: job.kind, waitedMs: waited }, "shed: waited too long");
      job.cancel("shed: waited too long");
    }
    return undefined;
  }

  /** Resolves once no job is running: after close(), the model can then be freed safely. */
  async whenIdle(): Promise<void> {
    while (this.running) await this.running;
  }

  private pump(): void {
    if (this.running) return;
    const job = this.next();
    if (!job) return;
    this.running = job.start().finally(() => {
      this.running = undefined;
      this.pump();
    });
  }
}
