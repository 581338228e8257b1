/** Evaluations between full collections of their samplers' memory. */
export const EVALUATIONS_PER_COLLECTION = 32;

/**
 * node-llama-cpp gives every evaluation a sampler whose native part holds one entry per vocabulary token (the
 * bench and test/llm/evaluationMemory.test.ts measure how much) until V8 collects the small JavaScript object that owns it, and V8 cannot see that
 * memory. A small young generation (--max-semi-space-size) collects them while evaluations run one at a time; when
 * several share a pass, their wrappers outlive young-generation collections and wait for a full one, which V8 has
 * no reason to start. So the model's owner runs a full collection every so many evaluations, when the process was
 * started with --expose-gc (the npm scripts pass it); without it, it does nothing and startup warns.
 */
export class SamplerCollector {
  private sinceLast = 0;

  constructor(
    private readonly every: number,
    private readonly collect: (() => void) | undefined,
  ) {}

  /** Counts finished evaluations, and collects once `every` of them have finished since the last time. */
  evaluated(count = 1): void {
    if (!this.collect) return;
    this.sinceLast += count;
    if (this.sinceLast < this.every) return;
    this.sinceLast = 0;
    this.collect();
  }
}

/** A full garbage collection, where the process exposes one. */
export function fullCollection(): (() => void) | undefined {
  const gc = globalThis.gc;
  return typeof gc === "function" ? () => gc() : undefined;
}
