import { JobCancelledError } from "../../platform/errors.js";
import type { Logger } from "../../platform/logger.js";
import type { PassReport, QueueDepth, SchedulerStats } from "../llm.js";
import {
  type ActiveGeneration,
  abortReason,
  type ClassifyJob,
  type ClassifyRequest,
  type GenerateRequest,
  JobQueues,
  removeFrom,
} from "./jobQueues.js";
import { PassComposer } from "./passComposer.js";
import { PassCost } from "./passCost.js";
import type { Classification, ClassifierLane, GenerationStep } from "./passModel.js";

export type { ClassifyRequest, GenerateRequest } from "./jobQueues.js";

export interface SchedulerOptions {
  readonly logger: Logger;
  /** Background jobs beyond this many waiting are shed: the busiest group's oldest first. */
  readonly maxBackgroundQueue: number;
  /** A background job that waited longer than this is shed when its turn comes: a late reaction is noise. */
  readonly maxBackgroundAgeMs: number;
  /**
   * While generations run, their token rate stays at or above this share of their rate with nothing else in the
   * pass (0 to 1). Background work rides in their passes only as far as that allows.
   */
  readonly chatSpeedFloor: number;
  /** Background tokens one pass may carry (the runtime's batch size); its first classification always fits. */
  readonly maxPassTokens: number;
  /** Told about every pass once it returned: what it carried and how long it took (for metrics). */
  readonly onPass?: (pass: PassReport) => void;
  readonly now?: () => number;
}

/** One piece of work in a pass: issued with the others in one tick, settled after all of them return. */
interface PassItem {
  readonly kind: "prompt" | "step" | "classify";
  readonly tokens: number;
  /** The classifier lane of a classification. */
  readonly lane?: string;
  issue(): Promise<unknown>;
  settle(outcome: PromiseSettledResult<unknown>): Promise<void>;
}

/**
 * Continuous batching over one model. Each pass carries the next step of every running generation, the prompt of
 * any generation that can start, waiting interactive classifications and, as far as the chat speed floor allows,
 * background classifications picked round-robin across groups. Everything in a pass is issued in the same tick,
 * so the runtime evaluates it in one decode, and the next pass is composed only once the whole pass returned:
 *
 * - A new generation's prompt waits for at most the pass in flight once it can lease a sequence, and its pass
 *   carries no background work. A generation that cannot lease yet holds back no other.
 * - While generations run, a credit in milliseconds keeps their step time, over any stretch of passes, within
 *   1 / chatSpeedFloor of a step alone: every pass with steps earns that allowance and pays what it took.
 *   Background work joins a pass only when the credit covers the pass's predicted cost (the measured cost of the
 *   steps alone plus a measured cost per background token), and then as wide a batch as the sequences, the queue
 *   and the pass token budget allow, filled first with inputs of one length: those share the pass's fixed cost,
 *   so the scheduler would rather wait a few steps for credit than send narrow passes.
 * - With no generation running, every pass is as wide as the background queue and the sequences allow.
 *
 * The Scheduler keeps the running generations' lifecycle and the pump, over three parts: `JobQueues` (what waits,
 * and how it is shed or cancelled), `PassComposer` (what each pass carries) and `PassCost` (the measured costs
 * and the credit).
 */
export class Scheduler {
  private readonly queues: JobQueues;
  /** Generations holding a sequence: each advances one step in every pass until it is done. */
  private readonly active: ActiveGeneration[] = [];
  private readonly cost: PassCost;
  private readonly composer: PassComposer;
  private running: Promise<void> | undefined;
  private closedReason: string | undefined;
  private readonly now: () => number;
  /** Classifications in the pass running now: with the active generations, the work in flight. */
  private passClassifications = 0;
  readonly stats: SchedulerStats = {
    completed: 0,
    failed: 0,
    shedFull: 0,
    shedStale: 0,
    cancelled: 0,
    passes: 0,
    sharedPasses: 0,
  };

  constructor(private readonly options: SchedulerOptions) {
    // Sub-millisecond: a small model's step can take less than a millisecond, and the credit is built from them.
    this.now = options.now ?? (() => performance.now());
    this.queues = new JobQueues({
      logger: options.logger,
      maxBackgroundQueue: options.maxBackgroundQueue,
      maxBackgroundAgeMs: options.maxBackgroundAgeMs,
      now: this.now,
      stats: this.stats,
    });
    this.cost = new PassCost(options.chatSpeedFloor);
    this.composer = new PassComposer({
      queues: this.queues,
      active: this.active,
      cost: this.cost,
      maxPassTokens: options.maxPassTokens,
      maxBackgroundAgeMs: options.maxBackgroundAgeMs,
      now: this.now,
      onStartFailed: (job, error) => {
        this.stats.failed++;
        job.reject(error);
      },
    });
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Jobs waiting, by kind: what the queue-depth metric reports. */
  get queueDepth(): QueueDepth {
    return this.queues.depth;
  }

  /** Work on the model now: the generations holding a sequence, and the classifications of the pass running. */
  get inFlight(): number {
    return this.active.length + this.passClassifications;
  }

  /**
   * Runs `work` with the model to itself: after the pass in flight and before the next one, while queued work
   * waits. Generations that are running keep their sequences and go on afterwards.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const refused = this.refusal("exclusive", undefined);
    if (refused) return Promise.reject(refused);
    return new Promise<T>((resolve, reject) => {
      this.queues.exclusives.push({ run: work, resolve: resolve as (result: unknown) => void, reject });
      this.pump();
    });
  }

  /** Queues one classification; it runs in some pass on one of its lane's sequences. */
  classify<R>(lane: ClassifierLane<R>, text: string, request: ClassifyRequest): Promise<R> {
    const refused = this.refusal(lane.name, request.signal);
    if (refused) return Promise.reject(refused);
    return new Promise<R>((resolve, reject) => {
      this.queues.addClassify(lane, text, request, resolve, reject);
      this.pump();
    });
  }

  /** Queues a generation; once it has a sequence, it advances by one step in every pass until it is done. */
  generate<R>(request: GenerateRequest<R>): Promise<R> {
    const refused = this.refusal("chat", request.signal);
    if (refused) return Promise.reject(refused);
    return new Promise<R>((resolve, reject) => {
      this.queues.addGenerate(request, resolve, reject);
      this.pump();
    });
  }

  /** Cancels every queued job, stops every generation after the pass in flight, and refuses new work. */
  close(reason = "the model is shutting down"): void {
    if (this.closed) return;
    this.closedReason = reason;
    this.queues.cancelAll(reason);
    if (!this.running) this.running = this.stopGenerations(reason).finally(() => (this.running = undefined));
  }

  /** Resolves once no pass is running and every generation is closed: the model can then be freed safely. */
  async whenIdle(): Promise<void> {
    while (this.running) await this.running;
  }

  private refusal(kind: string, signal: AbortSignal | undefined): JobCancelledError | undefined {
    if (this.closedReason !== undefined) return new JobCancelledError(kind, this.closedReason);
    if (signal?.aborted) return new JobCancelledError(kind, "aborted before it was queued");
    return undefined;
  }

  private pump(): void {
    if (this.running || this.closed) return;
    const exclusive = this.queues.exclusives.shift();
    if (exclusive) {
      this.running = exclusive
        .run()
        .then(exclusive.resolve, exclusive.reject)
        .finally(() => this.afterRun());
      return;
    }
    const closing = this.active.filter((generation) => generation.job.signal?.aborted);
    const items = this.compose(closing);
    if (items.length === 0 && closing.length === 0) return;
    this.running = this.runPass(items, closing).finally(() => this.afterRun());
  }

  private afterRun(): void {
    this.running = undefined;
    if (this.closedReason !== undefined) {
      this.running = this.stopGenerations(this.closedReason).finally(() => (this.running = undefined));
    } else {
      this.pump();
    }
  }

  private compose(closing: readonly ActiveGeneration[]): PassItem[] {
    const plan = this.composer.compose(closing);
    return [
      ...plan.steps.map((generation) => this.stepItem(generation, "step")),
      ...plan.prompts.map((generation) => this.stepItem(generation, "prompt")),
      ...plan.classifications.map(({ job, classification }) => this.classifyItem(job, classification)),
    ];
  }

  private stepItem(generation: ActiveGeneration, kind: "prompt" | "step"): PassItem {
    const { job, lease } = generation;
    return {
      kind,
      tokens: lease.generation.pendingTokens,
      issue: () => lease.generation.step(),
      settle: async (outcome) => {
        if (outcome.status === "rejected") return this.endGeneration(generation, outcome.reason);
        const step = outcome.value as GenerationStep;
        if (step.text !== "") job.request.onText?.(step.text);
        if (step.done) return this.endGeneration(generation);
        if (job.signal?.aborted) return this.endGeneration(generation, abortReason(job));
      },
    };
  }

  private classifyItem(job: ClassifyJob, classification: Classification<unknown>): PassItem {
    return {
      kind: "classify",
      tokens: job.tokens,
      lane: job.kind,
      issue: () => classification.run(),
      settle: async (outcome) => {
        if (outcome.status === "fulfilled") {
          this.stats.completed++;
          job.resolve(outcome.value);
        } else {
          this.stats.failed++;
          job.reject(outcome.reason);
        }
      },
    };
  }

  private async runPass(items: readonly PassItem[], closing: readonly ActiveGeneration[]): Promise<void> {
    for (const generation of closing) await this.endGeneration(generation, abortReason(generation.job));
    if (items.length === 0) return;
    const started = this.now();
    this.passClassifications = items.filter((item) => item.kind === "classify").length;
    // Issued in one synchronous loop, so the runtime sees them all before it dispatches the next decode.
    const outcomes = await Promise.allSettled(items.map((item) => item.issue()));
    this.passClassifications = 0;
    const elapsedMs = this.now() - started;
    this.account(items, elapsedMs);
    this.options.onPass?.(passReport(items, elapsedMs));
    for (const [index, item] of items.entries()) {
      const outcome = outcomes[index];
      if (outcome) await item.settle(outcome);
    }
  }

  /** Counts a pass that just ran, and tells the cost model what it carried and took. */
  private account(items: readonly PassItem[], elapsedMs: number): void {
    this.stats.passes++;
    if (items.length > 1) this.stats.sharedPasses++;
    this.cost.account({
      carriedPrompt: items.some((item) => item.kind === "prompt"),
      steps: items.filter((item) => item.kind === "step").length,
      backgroundTokens: items.reduce((sum, item) => sum + (item.kind === "classify" ? item.tokens : 0), 0),
      elapsedMs,
      generationsRunning: this.active.length,
    });
  }

  private async endGeneration(generation: ActiveGeneration, error?: unknown): Promise<void> {
    removeFrom(this.active, generation);
    if (this.active.length === 0) this.cost.resetCredit();
    const { job, lease } = generation;
    try {
      await lease.generation.close();
    } finally {
      lease.release();
    }
    if (error === undefined) {
      this.stats.completed++;
      job.resolve(lease.generation.completion);
    } else {
      if (error instanceof JobCancelledError) this.stats.cancelled++;
      else this.stats.failed++;
      job.reject(error);
    }
  }

  private async stopGenerations(reason: string): Promise<void> {
    for (const generation of [...this.active]) {
      await this.endGeneration(generation, new JobCancelledError(generation.job.kind, reason));
    }
  }
}

function passReport(items: readonly PassItem[], durationMs: number): PassReport {
  const classifications: Record<string, number> = {};
  let generationSteps = 0;
  for (const item of items) {
    if (item.lane !== undefined) classifications[item.lane] = (classifications[item.lane] ?? 0) + 1;
    else generationSteps++;
  }
  return { durationMs, classifications, generationSteps };
}
