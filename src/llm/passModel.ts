/**
 * The model at the level of forward passes: the seam between the scheduler, which decides what each pass carries,
 * and a runtime that evaluates it (llama.cpp in production, a fake with a cost model in the scheduler's tests).
 *
 * Work is sized when it is queued (how many tokens it adds to a pass), reserved, and then issued. Everything
 * the scheduler issues in one tick shares one decode: the runtime must batch evaluations that different
 * sequences issue together (node-llama-cpp does).
 */

/** What one step of a generation produced. */
export interface GenerationStep {
  /** Text this step added: empty while a multi-byte character is still incomplete. */
  readonly text: string;
  readonly done: boolean;
}

/** A generation on its own sequence, advanced one pass at a time. */
export interface Generation<R> {
  /** Tokens the next step adds to its pass: the prompt's unevaluated part before the first step, then 1. */
  readonly pendingTokens: number;
  readonly done: boolean;
  /** The result so far; final once `done`. */
  readonly completion: R;
  /** Evaluates this generation's share of one pass and samples its next token. */
  step(): Promise<GenerationStep>;
  /** Ends the generation early or after it is done; the sequence keeps what it evaluated. */
  close(): Promise<void>;
}

/** A classification ready to run: one pass's share on a sequence it holds until it settles. */
export interface Classification<R> {
  run(): Promise<R>;
  /** Gives the sequence back without running, when the scheduler decides to hold the work back. */
  release(): void;
}

/** A kind of classification (sentiment, a label task) and the sequences that can run it side by side. */
export interface ClassifierLane<R> {
  readonly name: string;
  /** How many of this lane's classifications one pass can carry. */
  readonly slots: number;
  /** Tokens `text` adds to a pass: the scheduler asks once, when the work is queued, and sizes passes with it. */
  tokensFor(text: string): number;
  /** Reserves a free sequence for `text`, or returns undefined while every one is busy. */
  prepare(text: string): Classification<R> | undefined;
}

/** A lease on a generation sequence; `release` gives it back once the generation is closed. */
export interface GenerationLease<R> {
  readonly generation: Generation<R>;
  release(): void;
}
