import { JobCancelledError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { BackgroundQueue } from "../backgroundQueue.js";
import type { JobPriority, PassReport, QueueDepth, SchedulerStats } from "../llm.js";
import type { Classification, ClassifierLane, GenerationLease, GenerationStep } from "./passModel.js";

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

interface Waiting {
  readonly kind: string;
  readonly enqueuedAt: number;
  readonly signal: AbortSignal | undefined;
  /** Stops watching the caller's signal once the job leaves the queue. */
  detach(): void;
  cancel(reason: string): void;
}

interface ClassifyJob<R = unknown> extends Waiting {
  readonly lane: ClassifierLane<R>;
  readonly text: string;
  /** What it adds to a pass, known when it is queued so that passes can be formed by length. */
  readonly tokens: number;
  readonly group: string;
  readonly shedLast: boolean;
  resolve(result: R): void;
  reject(error: unknown): void;
}

interface GenerateJob<R = unknown> extends Waiting {
  readonly request: GenerateRequest<R>;
  resolve(result: R): void;
  reject(error: unknown): void;
}

/** Work that needs the model to itself, such as evaluating a new prompt prefix: it runs between passes. */
interface ExclusiveJob {
  run(): Promise<unknown>;
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

interface ActiveGeneration {
  readonly job: GenerateJob;
  readonly lease: GenerationLease<unknown>;
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

const DEFAULT_GROUP = "";
/** How fast the measured costs follow change. */
const COST_SMOOTHING = 0.2;
/**
 * Until a background token's cost has been measured, it is taken as this share of a step alone: on the side of
 * caution where per-token compute dominates (a CPU), and corrected by the first pass that carries one.
 */
const UNMEASURED_TOKEN_SHARE = 0.25;
/** How deep into each group's queue a pass looks for inputs of its first input's length. */
const SAME_LENGTH_LOOKAHEAD = 16;
/** The credit can save up this many allowances: enough for a wide pass of background work. */
const CREDIT_CAP_ALLOWANCES = 8;

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
 */
export class Scheduler {
  private readonly pendingGenerations: GenerateJob[] = [];
  private readonly interactive: ClassifyJob[] = [];
  private readonly background: BackgroundQueue<ClassifyJob>;
  private readonly active: ActiveGeneration[] = [];
  private readonly exclusives: ExclusiveJob[] = [];
  private running: Promise<void> | undefined;
  private closedReason: string | undefined;
  private readonly now: () => number;
  /** Measured duration of a pass that carried only generation steps, by how many steps it carried. */
  private readonly stepCostMs = new Map<number, number>();
  /** Measured cost of one background token riding in a pass, beyond the pass's steps. */
  private backgroundTokenMs: number | undefined;
  private creditMs = 0;
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
    this.background = new BackgroundQueue<ClassifyJob>({
      logger: options.logger,
      maxSize: options.maxBackgroundQueue,
      maxAgeMs: options.maxBackgroundAgeMs,
      now: this.now,
      onShed: (job, reason) => {
        if (reason === "full") this.stats.shedFull++;
        else this.stats.shedStale++;
        job.detach();
        job.cancel(reason === "full" ? "shed: the background queue is full" : "shed: waited too long");
      },
    });
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Jobs waiting, by kind: what the queue-depth metric reports. */
  get queueDepth(): QueueDepth {
    return {
      interactive: this.interactive.length,
      background: this.background.size,
      chat: this.pendingGenerations.length,
    };
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
      this.exclusives.push({ run: work, resolve: resolve as (result: unknown) => void, reject });
      this.pump();
    });
  }

  /** Queues one classification; it runs in some pass on one of its lane's sequences. */
  classify<R>(lane: ClassifierLane<R>, text: string, request: ClassifyRequest): Promise<R> {
    const kind = lane.name;
    const refused = this.refusal(kind, request.signal);
    if (refused) return Promise.reject(refused);
    return new Promise<R>((resolve, reject) => {
      const job: ClassifyJob<R> = {
        ...this.waiting(kind, request.signal, () => this.removeClassify(job as ClassifyJob), reject),
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
      this.pump();
    });
  }

  /** Queues a generation; once it has a sequence, it advances by one step in every pass until it is done. */
  generate<R>(request: GenerateRequest<R>): Promise<R> {
    const refused = this.refusal("chat", request.signal);
    if (refused) return Promise.reject(refused);
    return new Promise<R>((resolve, reject) => {
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
      this.pump();
    });
  }

  /** Cancels every queued job, stops every generation after the pass in flight, and refuses new work. */
  close(reason = "the model is shutting down"): void {
    if (this.closed) return;
    this.closedReason = reason;
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

  /** The queue bookkeeping every job shares: its caller's signal takes it out of the queue while it waits. */
  private waiting(
    kind: string,
    signal: AbortSignal | undefined,
    remove: () => boolean,
    reject: (error: unknown) => void,
  ): Waiting {
    const onAbort = () => {
      if (remove()) {
        signal?.removeEventListener("abort", onAbort);
        this.stats.cancelled++;
        reject(new JobCancelledError(kind, "aborted while waiting"));
      }
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    return {
      kind,
      enqueuedAt: this.now(),
      signal,
      detach: () => signal?.removeEventListener("abort", onAbort),
      cancel: (reason) => {
        this.stats.cancelled++;
        reject(new JobCancelledError(kind, reason));
      },
    };
  }

  private removeClassify(job: ClassifyJob): boolean {
    return removeFrom(this.interactive, job) || this.background.remove(job);
  }

  private pump(): void {
    if (this.running || this.closed) return;
    const exclusive = this.exclusives.shift();
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
    const items: PassItem[] = [];
    for (const generation of this.active) {
      if (!closing.includes(generation)) items.push(this.stepItem(generation, "step"));
    }
    const running = items.length;
    items.push(...this.startGenerations());
    const carriesPrompt = items.length > running;
    for (const job of [...this.interactive]) {
      const classification = job.lane.prepare(job.text);
      if (!classification) continue;
      removeFrom(this.interactive, job);
      job.detach();
      items.push(this.classifyItem(job, classification));
    }
    if (!carriesPrompt) items.push(...this.pickBackground(running));
    return items;
  }

  /**
   * The prompt of every waiting generation that can lease a sequence now. Each is tried in the order they came:
   * one that cannot lease yet (its conversation's sequence is busy, or none is free for it) stays in its place
   * without holding back those behind it, and is tried first again once a sequence is free. Within one
   * conversation the order holds, because the runtime refuses a conversation while its sequence generates.
   */
  private startGenerations(): PassItem[] {
    const prompts: PassItem[] = [];
    for (const job of [...this.pendingGenerations]) {
      let lease: GenerationLease<unknown> | undefined;
      try {
        lease = job.request.start();
      } catch (error) {
        // A prompt that cannot even be rendered fails its own caller, never the pass.
        removeFrom(this.pendingGenerations, job);
        job.detach();
        this.stats.failed++;
        job.reject(error);
        continue;
      }
      if (!lease) continue;
      removeFrom(this.pendingGenerations, job);
      job.detach();
      const generation = { job, lease };
      this.active.push(generation);
      prompts.push(this.stepItem(generation, "prompt"));
    }
    return prompts;
  }

  /**
   * Round-robin over groups, one job per group per round, until the sequences or the token budget run out; right
   * after the first job, other jobs of exactly its length join from near the front of any group. A runtime with one
   * KV stream per sequence (node-llama-cpp's) splits a batch into sub-batches of equal length per sequence, each
   * paying a pass's fixed cost, so only inputs of one length share it; elsewhere the grouping costs nothing. With
   * generations running, the batch goes only if the credit covers it; otherwise nothing goes and the credit grows.
   */
  private pickBackground(steps: number): PassItem[] {
    const picked: Array<{ job: ClassifyJob; classification: Classification<unknown> }> = [];
    let tokens = 0;
    const full = () => picked.length > 0 && tokens >= this.options.maxPassTokens;
    const take = (job: ClassifyJob): boolean => {
      const classification = job.lane.prepare(job.text);
      if (!classification) return false;
      this.removeClassify(job);
      this.background.served(job.group);
      picked.push({ job, classification });
      tokens += job.tokens;
      return true;
    };
    let progress = true;
    while (progress && !full()) {
      progress = false;
      for (const group of this.background.groupOrder()) {
        if (full()) break;
        const job = this.background.freshHead(group);
        if (!job || !take(job)) continue;
        progress = true;
        if (picked.length === 1) this.takeSameLength(job, take, full);
      }
    }
    const go = steps > 0 ? this.affordableCount(steps, picked) : picked.length;
    // Held back: the batch waits at the front of its groups, and its sequences are free again.
    for (const { job, classification } of picked.splice(go).reverse()) {
      this.background.requeueFront(job);
      classification.release();
    }
    return picked.map(({ job, classification }) => {
      job.detach();
      return this.classifyItem(job, classification);
    });
  }

  /**
   * How much of a batch may ride with `steps` generation steps: all of it once the credit covers it, none while
   * the credit is still growing toward it, and as much as fits (at least one) once the credit is at its cap, so a
   * batch too costly for any credit cannot starve.
   */
  private affordableCount(steps: number, batch: ReadonlyArray<{ job: ClassifyJob }>): number {
    const alone = this.stepCostMs.get(steps);
    // A step alone must be timed first: until then nothing rides along.
    if (alone === undefined) return 0;
    const allowance = alone / this.options.chatSpeedFloor;
    const perToken = this.backgroundTokenMs ?? alone * UNMEASURED_TOKEN_SHARE;
    let tokens = 0;
    let fits = 0;
    for (const { job } of batch) {
      tokens += job.tokens;
      if (this.creditMs + allowance - (alone + perToken * tokens) < 0) break;
      fits++;
    }
    if (fits === batch.length) return fits;
    return this.creditMs >= allowance * CREDIT_CAP_ALLOWANCES ? Math.max(1, fits) : 0;
  }

  /** Jobs of the anchor's lane and length, one per group per round as everywhere else, while they fit. */
  private takeSameLength(
    anchor: ClassifyJob,
    take: (job: ClassifyJob) => boolean,
    full: () => boolean,
  ): void {
    const matches = (job: ClassifyJob) =>
      job.lane === anchor.lane &&
      job.tokens === anchor.tokens &&
      this.now() - job.enqueuedAt <= this.options.maxBackgroundAgeMs;
    let progress = true;
    while (progress) {
      progress = false;
      for (const group of this.background.groupOrder()) {
        if (full()) return;
        const job = this.background.peek(group, SAME_LENGTH_LOOKAHEAD).find(matches);
        if (!job) continue;
        // No sequence free: the pass is as wide as it can be.
        if (!take(job)) return;
        progress = true;
      }
    }
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

  /** Updates the measured costs and the generations' credit from a pass that just ran. */
  private account(items: readonly PassItem[], elapsedMs: number): void {
    this.stats.passes++;
    if (items.length > 1) this.stats.sharedPasses++;
    if (items.some((item) => item.kind === "prompt")) return;
    const steps = items.filter((item) => item.kind === "step").length;
    const backgroundTokens = items.reduce(
      (sum, item) => sum + (item.kind === "classify" ? item.tokens : 0),
      0,
    );
    if (steps > 0 && backgroundTokens === 0) {
      this.stepCostMs.set(steps, smooth(this.stepCostMs.get(steps), elapsedMs));
    }
    // A pass of steps and background work, or of background work alone once a single step was timed, tells
    // what a background token adds.
    const base = steps > 0 ? this.stepCostMs.get(steps) : this.stepCostMs.get(1);
    const ownTokens = steps > 0 ? backgroundTokens : backgroundTokens - 1;
    if (base !== undefined && backgroundTokens > 0 && ownTokens > 0) {
      const perToken = Math.max(0, (elapsedMs - base) / ownTokens);
      this.backgroundTokenMs = smooth(this.backgroundTokenMs, perToken);
    }
    if (steps === 0) {
      if (this.active.length === 0) this.creditMs = 0;
      return;
    }
    const alone = this.stepCostMs.get(steps);
    if (alone === undefined) return;
    const allowance = alone / this.options.chatSpeedFloor;
    this.creditMs = Math.min(allowance * CREDIT_CAP_ALLOWANCES, this.creditMs + allowance - elapsedMs);
  }

  private async endGeneration(generation: ActiveGeneration, error?: unknown): Promise<void> {
    removeFrom(this.active, generation);
    if (this.active.length === 0) this.creditMs = 0;
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

function smooth(before: number | undefined, measured: number): number {
  return before === undefined ? measured : before + COST_SMOOTHING * (measured - before);
}

function abortReason(job: Waiting): unknown {
  const reason = job.signal?.reason;
  return reason instanceof Error ? reason : new JobCancelledError(job.kind, "aborted while running");
}

function removeFrom<T>(list: T[], item: T): boolean {
  const index = list.indexOf(item);
  if (index < 0) return false;
  list.splice(index, 1);
  return true;
}
