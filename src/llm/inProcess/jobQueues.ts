import { JobCancelledError } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import { BackgroundQueue } from "../backgroundQueue.js";
import type { JobPriority, QueueDepth, SchedulerStats } from "../llm.js";
import type { ClassifierLane, GenerationLease } from "./passModel.js";

export interface ClassifyRequest {
  readonly priority: JobPriority;
  /** Background fairness group, such as a guild id: groups are served round-robin. */
  readonly group?: string;
  /** Background work shed only once no other background work is left to shed (moderation, before reactions). */
  readonly shedLast?: boolean;
  readonly signal?: AbortSignal;
}

export interface GenerateRequest<R> {
  /**
   * Leases a generation sequence and prepares the generation, or returns undefined while it must wait for one.
   * Called again before each pass until it leases; a conversation's later turn must be refused while its
   * earlier one holds the sequence, which keeps the turns in order.
   */
  readonly start: () => GenerationLease<R> | undefined;
  readonly onText?: (text: string) => void;
  readonly signal?: AbortSignal;
}

export interface Waiting {
  readonly kind: string;
  readonly enqueuedAt: number;
  readonly signal: AbortSignal | undefined;
  /** Stops watching the caller's signal once the job leaves the queue. */
  detach(): void;
  cancel(reason: string): void;
}

export interface ClassifyJob<R = unknown> extends Waiting {
  readonly lane: ClassifierLane<R>;
  readonly text: string;
  /** What it adds to a pass, known when it is queued so that passes can be formed by length. */
  readonly tokens: number;
  readonly group: string;
  readonly shedLast: boolean;
  resolve(result: R): void;
  reject(error: unknown): void;
}

export interface GenerateJob<R = unknown> extends Waiting {
  readonly request: GenerateRequest<R>;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/** Work that needs the model to itself, such as evaluating a new prompt prefix: it runs between passes. */
export interface ExclusiveJob {
  run(): Promise<unknown>;
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

export interface ActiveGeneration {
  readonly job: GenerateJob;
  readonly lease: GenerationLease<unknown>;
}

export interface JobQueuesOptions {
  readonly logger: Logger;
  /** Background jobs beyond this many waiting are shed: the busiest group's oldest first. */
  readonly maxBackgroundQueue: number;
  /** A background job that waited longer than this is shed when its turn comes. */
  readonly maxBackgroundAgeMs: number;
  readonly now: () => number;
  /** The scheduler's counters: the queues count what they shed and what their callers cancelled. */
  readonly stats: SchedulerStats;
}

const DEFAULT_GROUP = "";

/**
 * The pass scheduler's admission: the queues its work waits in before a pass takes it (generations that have no
 * sequence yet, interactive and background classifications, exclusive work), with the bookkeeping every waiting
 * job shares: its caller's signal takes it out while it waits, and the background queue sheds it.
 */
export class JobQueues {
  readonly pendingGenerations: GenerateJob[] = [];
  readonly interactive: ClassifyJob[] = [];
  readonly background: BackgroundQueue<ClassifyJob>;
  readonly exclusives: ExclusiveJob[] = [];

  constructor(private readonly options: JobQueuesOptions) {
    const { stats } = options;
    this.background = new BackgroundQueue<ClassifyJob>({
      logger: options.logger,
      maxSize: options.maxBackgroundQueue,
      maxAgeMs: options.maxBackgroundAgeMs,
      now: options.now,
      onShed: (job, reason) => {
        if (reason === "full") stats.shedFull++;
        else stats.shedStale++;
        job.detach();
        job.cancel(reason === "full" ? "shed: the background queue is full" : "shed: waited too long");
      },
    });
  }

  /** Jobs waiting, by kind: what the queue-depth metric reports. */
  get depth(): QueueDepth {
    return {
      interactive: this.interactive.length,
      background: this.background.size,
      chat: this.pendingGenerations.length,
    };
  }

  /** Queues a classification by its priority; its caller hears through `resolve` and `reject`. */
  addClassify<R>(
    lane: ClassifierLane<R>,
    text: string,
    request: ClassifyRequest,
    resolve: (result: R) => void,
    reject: (error: unknown) => void,
  ): void {
    const job: ClassifyJob<R> = {
      ...this.waiting(lane.name, request.signal, () => this.removeClassify(job as ClassifyJob), reject),
      lane,
      text,
      tokens: lane.tokensFor(text),
      group: request.group ?? DEFAULT_GROUP,
      shedLast: request.shedLast === true,
      resolve,
      reject,
    };
    if (request.priority === "interactive") {
      this.interactive.push(job as ClassifyJob);
    } else {
      this.background.push(job as ClassifyJob);
    }
  }

  /** Queues a generation until it leases a sequence; its caller hears through `resolve` and `reject`. */
  addGenerate<R>(
    request: GenerateRequest<R>,
    resolve: (result: R) => void,
    reject: (error: unknown) => void,
  ): void {
    const job: GenerateJob<R> = {
      ...this.waiting(
        "chat",
        request.signal,
        () => removeFrom(this.pendingGenerations, job as GenerateJob),
        reject,
      ),
      request,
      resolve,
      reject,
    };
    this.pendingGenerations.push(job as GenerateJob);
  }

  /** Empties every queue: exclusive work first, then every waiting job, each cancelled for `reason`. */
  cancelAll(reason: string): void {
    for (const job of this.exclusives.splice(0)) job.reject(new JobCancelledError("exclusive", reason));
    const queued: Waiting[] = [
      ...this.pendingGenerations.splice(0),
      ...this.interactive.splice(0),
      ...this.background.drain(),
    ];
    for (const job of queued) {
      job.detach();
      job.cancel(reason);
    }
  }

  /** The queue bookkeeping every job shares: its caller's signal takes it out of the queue while it waits. */
  private waiting(
    kind: string,
    signal: AbortSignal | undefined,
    remove: () => boolean,
    reject: (error: unknown) => void,
  ): Waiting {
    const { stats } = this.options;
    const onAbort = () => {
      if (remove()) {
        signal?.removeEventListener("abort", onAbort);
        stats.cancelled++;
        reject(new JobCancelledError(kind, "aborted while waiting"));
      }
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    return {
      kind,
      enqueuedAt: this.options.now(),
      signal,
      detach: () => signal?.removeEventListener("abort", onAbort),
      cancel: (reason) => {
        stats.cancelled++;
        reject(new JobCancelledError(kind, reason));
      },
    };
  }

  private removeClassify(job: ClassifyJob): boolean {
    return removeFrom(this.interactive, job) || this.background.remove(job);
  }
}

/** Why a running job ends after its caller aborted: the caller's own reason when it gave an error. */
export function abortReason(job: Waiting): unknown {
  const reason = job.signal?.reason;
  return reason instanceof Error ? reason : new JobCancelledError(job.kind, "aborted while running");
}

export function removeFrom<T>(list: T[], item: T): boolean {
  const index = list.indexOf(item);
  if (index < 0) return false;
  list.splice(index, 1);
  return true;
}
