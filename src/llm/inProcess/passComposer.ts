import type { BackgroundQueue } from "../backgroundQueue.js";
import { type ActiveGeneration, type ClassifyJob, type GenerateJob, removeFrom } from "./jobQueues.js";
import type { PassCost } from "./passCost.js";
import type { Classification, GenerationLease } from "./passModel.js";

/** How deep into each group's queue a pass looks for inputs of its first input's length. */
const SAME_LENGTH_LOOKAHEAD = 16;

/** The scheduler's queues (its `JobQueues`), shared by reference: the composer takes each pass's work out of them. */
export interface PassQueues {
  readonly pendingGenerations: GenerateJob[];
  readonly interactive: ClassifyJob[];
  readonly background: BackgroundQueue<ClassifyJob>;
}

export interface PassComposerOptions {
  readonly queues: PassQueues;
  /** The scheduler's generations holding a sequence, shared by reference: one that leases joins them. */
  readonly active: ActiveGeneration[];
  readonly cost: PassCost;
  /** Background tokens one pass may carry; its first classification always fits. */
  readonly maxPassTokens: number;
  readonly maxBackgroundAgeMs: number;
  readonly now: () => number;
  /** A generation whose prompt could not even be rendered, already out of the queue: it fails its own caller. */
  readonly onStartFailed: (job: GenerateJob, error: unknown) => void;
}

/** A classification taken out of its queue, its sequence reserved. */
export interface PlannedClassification {
  readonly job: ClassifyJob;
  readonly classification: Classification<unknown>;
}

/** What the next pass carries, in the order it is issued. */
export interface PassPlan {
  /** The next step of each running generation. */
  readonly steps: readonly ActiveGeneration[];
  /** The prompts of generations that leased a sequence just now (already among the active ones). */
  readonly prompts: readonly ActiveGeneration[];
  /** Interactive classifications first, then background ones. */
  readonly classifications: readonly PlannedClassification[];
}

/**
 * Decides what the next pass carries (see the comment above `Scheduler`): every running generation's step, the
 * prompts of generations that can lease now, every interactive classification with a free sequence, and, unless
 * a prompt is in the pass, a round-robin batch of background work filled first with inputs of one length and cut
 * to what the credit affords.
 */
export class PassComposer {
  constructor(private readonly options: PassComposerOptions) {}

  /** `closing`: running generations that end before the pass instead of stepping in it. */
  compose(closing: readonly ActiveGeneration[]): PassPlan {
    const { active } = this.options;
    const { interactive } = this.options.queues;
    const steps = active.filter((generation) => !closing.includes(generation));
    const prompts = this.startGenerations();
    const classifications: PlannedClassification[] = [];
    for (const job of [...interactive]) {
      const classification = job.lane.prepare(job.text);
      if (!classification) continue;
      removeFrom(interactive, job);
      job.detach();
      classifications.push({ job, classification });
    }
    if (prompts.length === 0) classifications.push(...this.pickBackground(steps.length));
    return { steps, prompts, classifications };
  }

  /**
   * Every waiting generation that can lease a sequence now. Each is tried in the order they came: one that cannot
   * lease yet (its conversation's sequence is busy, or none is free for it) stays in its place without holding
   * back those behind it, and is tried first again once a sequence is free. Within one conversation the order
   * holds, because the runtime refuses a conversation while its sequence generates.
   */
  private startGenerations(): ActiveGeneration[] {
    const { pendingGenerations } = this.options.queues;
    const { active } = this.options;
    const started: ActiveGeneration[] = [];
    for (const job of [...pendingGenerations]) {
      let lease: GenerationLease<unknown> | undefined;
      try {
        lease = job.request.start();
      } catch (error) {
        // A prompt that cannot even be rendered fails its own caller, never the pass.
        removeFrom(pendingGenerations, job);
        job.detach();
        this.options.onStartFailed(job, error);
        continue;
      }
      if (!lease) continue;
      removeFrom(pendingGenerations, job);
      job.detach();
      const generation = { job, lease };
      active.push(generation);
      started.push(generation);
    }
    return started;
  }

  /**
   * Round-robin over groups, one job per group per round, until the sequences or the token budget run out; right
   * after the first job, other jobs of exactly its length join from near the front of any group. A runtime with one
   * KV stream per sequence (node-llama-cpp's) splits a batch into sub-batches of equal length per sequence, each
   * paying a pass's fixed cost, so only inputs of one length share it; elsewhere the grouping costs nothing. With
   * generations running, the batch goes only if the credit covers it; otherwise nothing goes and the credit grows.
   */
  private pickBackground(steps: number): PlannedClassification[] {
    const { background } = this.options.queues;
    const picked: PlannedClassification[] = [];
    let tokens = 0;
    const full = () => picked.length > 0 && tokens >= this.options.maxPassTokens;
    const take = (job: ClassifyJob): boolean => {
      const classification = job.lane.prepare(job.text);
      if (!classification) return false;
      background.remove(job);
      background.served(job.group);
      picked.push({ job, classification });
      tokens += job.tokens;
      return true;
    };
    let progress = true;
    while (progress && !full()) {
      progress = false;
      for (const group of background.groupOrder()) {
        if (full()) break;
        const job = background.freshHead(group);
        if (!job || !take(job)) continue;
        progress = true;
        if (picked.length === 1) this.takeSameLength(job, take, full);
      }
    }
    const go =
      steps > 0
        ? this.options.cost.affordableCount(
            steps,
            picked.map(({ job }) => job.tokens),
          )
        : picked.length;
    // Held back: the batch waits at the front of its groups, and its sequences are free again.
    for (const { job, classification } of picked.splice(go).reverse()) {
      background.requeueFront(job);
      classification.release();
    }
    for (const { job } of picked) job.detach();
    return picked;
  }

  /** Jobs of the anchor's lane and length, one per group per round as everywhere else, while they fit. */
  private takeSameLength(
    anchor: ClassifyJob,
    take: (job: ClassifyJob) => boolean,
    full: () => boolean,
  ): void {
    const { background } = this.options.queues;
    const matches = (job: ClassifyJob) =>
      job.lane === anchor.lane &&
      job.tokens === anchor.tokens &&
      this.options.now() - job.enqueuedAt <= this.options.maxBackgroundAgeMs;
    let progress = true;
    while (progress) {
      progress = false;
      for (const group of background.groupOrder()) {
        if (full()) return;
        const job = background.peek(group, SAME_LENGTH_LOOKAHEAD).find(matches);
        if (!job) continue;
        // No sequence free: the pass is as wide as it can be.
        if (!take(job)) return;
        progress = true;
      }
    }
  }
}
