import { describe, expect, it } from "vitest";
import { ChatPool } from "../../src/llm/inProcess/chatPool.js";
import type {
  Classification,
  ClassifierLane,
  Generation,
  GenerationLease,
  GenerationOwner,
  GenerationStep,
} from "../../src/llm/inProcess/passModel.js";
import { Scheduler } from "../../src/llm/inProcess/scheduler.js";
import type { PassReport } from "../../src/llm/llm.js";
import { JobCancelledError } from "../../src/platform/errors.js";
import { createLogger } from "../../src/platform/logger.js";

/**
 * A fake runtime with a pass-cost model and a fake clock: what is issued in one tick becomes one pass, as in
 * node-llama-cpp, and a pass costs FIXED_MS plus PER_TOKEN_MS for each token it carries.
 */
const FIXED_MS = 40;
const PER_TOKEN_MS = 6;
const STEP_ALONE_MS = FIXED_MS + PER_TOKEN_MS;

interface RecordedPass {
  readonly items: string[];
  readonly tokens: number;
  readonly startedAt: number;
  readonly endedAt: number;
}

class FakeRuntime {
  clock = 0;
  readonly passes: RecordedPass[] = [];
  private forming: { items: string[]; tokens: number; done: Array<() => void> } | undefined;

  readonly now = () => this.clock;

  evaluate(item: string, tokens: number): Promise<void> {
    if (!this.forming) {
      const pass: { items: string[]; tokens: number; done: Array<() => void> } = {
        items: [],
        tokens: 0,
        done: [],
      };
      this.forming = pass;
      // Like node-llama-cpp's "nextCycle" dispatch: everything issued before it runs shares the decode.
      setImmediate(() => {
        this.forming = undefined;
        const startedAt = this.clock;
        this.clock += FIXED_MS + PER_TOKEN_MS * pass.tokens;
        this.passes.push({ items: pass.items, tokens: pass.tokens, startedAt, endedAt: this.clock });
        for (const resolve of pass.done) resolve();
      });
    }
    const pass = this.forming;
    pass.items.push(item);
    pass.tokens += tokens;
    return new Promise((resolve) => pass.done.push(resolve));
  }
}

class FakeLane implements ClassifierLane<string> {
  private free: number;
  failOn: string | undefined;

  constructor(
    private readonly runtime: FakeRuntime,
    readonly slots: number,
    readonly name = "sentiment",
  ) {
    this.free = slots;
  }

  /** 13 tokens, or what a text says it has: "short:6" has 6. */
  tokensFor(text: string): number {
    return Number(text.match(/:(\d+)$/)?.[1] ?? 13);
  }

  prepare(text: string): Classification<string> | undefined {
    if (this.free === 0) return undefined;
    this.free--;
    const tokens = this.tokensFor(text);
    let held = true;
    const giveBack = () => {
      if (held) this.free++;
      held = false;
    };
    return {
      run: async () => {
        try {
          await this.runtime.evaluate(`cls:${text}`, tokens);
          if (text === this.failOn) throw new Error(`could not classify ${text}`);
          return text;
        } finally {
          giveBack();
        }
      },
      release: giveBack,
    };
  }
}

interface FakeCompletion {
  readonly tokens: number;
  /** When each token came out, on the fake clock. */
  readonly tokenTimes: readonly number[];
}

class FakeGeneration implements Generation<FakeCompletion> {
  private produced = 0;
  private readonly tokenTimes: number[] = [];
  closed = false;
  /** The chat sequence it was leased. */
  sequence: string | undefined;

  constructor(
    private readonly runtime: FakeRuntime,
    readonly name: string,
    private readonly promptTokens: number,
    private readonly maxTokens: number,
  ) {}

  get pendingTokens(): number {
    return this.produced === 0 ? this.promptTokens : 1;
  }

  get done(): boolean {
    return this.produced >= this.maxTokens;
  }

  get completion(): FakeCompletion {
    return { tokens: this.produced, tokenTimes: this.tokenTimes };
  }

  async step(): Promise<GenerationStep> {
    await this.runtime.evaluate(
      `${this.produced === 0 ? "prompt" : "step"}:${this.name}`,
      this.pendingTokens,
    );
    this.produced++;
    this.tokenTimes.push(this.runtime.clock);
    return { text: "x", done: this.done };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** The bot's own chat pool over named fake sequences: the leasing policy under test is the real one. */
function leaseFrom(
  pool: ChatPool<string>,
  owner: GenerationOwner,
  generation: FakeGeneration,
): GenerationLease<FakeCompletion> | undefined {
  const lease = pool.tryLease(owner);
  if (!lease) return undefined;
  generation.sequence = lease.runner;
  return { generation, release: () => lease.release() };
}

function setup(
  options: {
    slots?: number;
    chatSlots?: number;
    maxQueue?: number;
    maxAgeMs?: number;
    floor?: number;
    onPass?: (pass: PassReport) => void;
  } = {},
) {
  const runtime = new FakeRuntime();
  const scheduler = new Scheduler({
    logger: createLogger({ level: "silent" }),
    maxBackgroundQueue: options.maxQueue ?? 1000,
    maxBackgroundAgeMs: options.maxAgeMs ?? 600_000,
    chatSpeedFloor: options.floor ?? 0.35,
    maxPassTokens: 128,
    now: runtime.now,
    ...(options.onPass ? { onPass: options.onPass } : {}),
  });
  const lane = new FakeLane(runtime, options.slots ?? 4);
  const pool = new ChatPool(Array.from({ length: options.chatSlots ?? 2 }, (_, i) => `seq${i}`));
  const run = (
    owner: GenerationOwner,
    name: string,
    promptTokens: number,
    maxTokens: number,
    signal?: AbortSignal,
  ) => {
    const generation = new FakeGeneration(runtime, name, promptTokens, maxTokens);
    const done = scheduler.generate({
      start: () => leaseFrom(pool, owner, generation),
      ...(signal ? { signal } : {}),
    });
    return { generation, done };
  };
  /** A reply in the conversation named `name`, unless another conversation is given. */
  const generate = (
    name: string,
    promptTokens: number,
    maxTokens: number,
    signal?: AbortSignal,
    conversation = name,
  ) => run({ kind: "conversation", key: conversation }, name, promptTokens, maxTokens, signal);
  /** A text task's generation (/summarize): `name` tells one run from another. */
  const task = (taskName: string, name: string, promptTokens: number, maxTokens: number) =>
    run({ kind: "task", key: taskName }, name, promptTokens, maxTokens);
  const classify = (text: string, group = "guild-a", signal?: AbortSignal) =>
    scheduler.classify(lane, text, { priority: "background", group, ...(signal ? { signal } : {}) });
  const classifyNow = (text: string) => scheduler.classify(lane, text, { priority: "interactive" });
  return { runtime, scheduler, lane, generate, task, classify, classifyNow };
}

/** Resolves with when each job finished, on the fake clock. */
function finishTimes(runtime: FakeRuntime, jobs: readonly Promise<unknown>[]): Promise<number[]> {
  return Promise.all(jobs.map((job) => job.then(() => runtime.clock)));
}

describe("Scheduler: what one pass carries", () => {
  it("puts a running reply's step and waiting reactions into one pass", async () => {
    const { runtime, scheduler, generate, classify } = setup();
    const reply = generate("alice", 20, 30);
    await new Promise((resolve) => setImmediate(resolve));
    const reactions = ["a", "b", "c"].map((text) => classify(text));
    await Promise.all([reply.done, ...reactions]);
    const shared = runtime.passes.find(
      (pass) => pass.items.includes("step:alice") && pass.items.some((item) => item.startsWith("cls:")),
    );
    expect(shared?.items).toEqual(expect.arrayContaining(["step:alice", "cls:a", "cls:b", "cls:c"]));
    expect(scheduler.stats.sharedPasses).toBeGreaterThan(0);
  });

  it("classifies a burst as wide as its sequences allow, one pass for each four", async () => {
    const { runtime, classify } = setup({ slots: 4 });
    await Promise.all(Array.from({ length: 8 }, (_, i) => classify(`m${i}`)));
    expect(runtime.passes.map((pass) => pass.items.length)).toEqual([1, 4, 3]);
  });

  it("keeps a long reply at or above the speed floor during a burst, then back to full speed", async () => {
    const floor = 0.35;
    const { runtime, generate, classify } = setup({ slots: 4, floor });
    const reply = generate("alice", 20, 300);
    await new Promise((resolve) => setImmediate(resolve));
    const groups = ["g1", "g2", "g3", "g4"];
    const reactions = Array.from({ length: 40 }, (_, i) => classify(`m${i}`, groups[i % 4]));
    const reacted = await finishTimes(runtime, reactions);
    const { tokenTimes } = await reply.done;
    const burstEnd = Math.max(...reacted);
    const during = tokenTimes.filter((time) => time <= burstEnd);
    // The rate over the burst, from the first token to the last reaction.
    const first = tokenTimes[0] ?? 0;
    const rateShare = (during.length - 1) / ((burstEnd - first) / STEP_ALONE_MS);
    expect(rateShare).toBeGreaterThanOrEqual(floor);
    // Every reaction was served while the reply ran, not after it.
    expect(burstEnd).toBeLessThan(tokenTimes.at(-1) ?? 0);
    // Once the queue is empty, every step is a pass of its own at full speed.
    const after = tokenTimes.filter((time) => time > burstEnd + STEP_ALONE_MS);
    const gaps = after.slice(1).map((time, i) => time - (after[i] ?? 0));
    expect(new Set(gaps)).toEqual(new Set([STEP_ALONE_MS]));
  });

  it("gives a new mention's prompt the next pass, with no reactions in it", async () => {
    const { runtime, generate, classify } = setup({ slots: 4 });
    const reactions = Array.from({ length: 20 }, (_, i) => classify(`m${i}`));
    await new Promise((resolve) => setImmediate(resolve));
    // A pass of reactions is in flight now; the mention arrives during it.
    const inFlight = runtime.passes.length;
    const mention = generate("bob", 30, 5);
    await mention.done;
    await Promise.all(reactions);
    const promptPass = runtime.passes.find((pass) => pass.items.includes("prompt:bob"));
    expect(runtime.passes.indexOf(promptPass as RecordedPass)).toBe(inFlight + 1);
    expect(promptPass?.items).toEqual(["prompt:bob"]);
  });

  it("fills a pass with reactions of its first one's length, fairly across servers", async () => {
    const { runtime, classify } = setup({ slots: 3 });
    // The first pass goes at once with the first reaction; the rest wait for the next.
    const first = classify("first:9");
    const waiting = [
      classify("a1:6", "a"),
      classify("b1:13", "b"),
      classify("a2:6", "a"),
      classify("a3:6", "a"),
      classify("c1:6", "c"),
    ];
    await Promise.all([first, ...waiting]);
    const passes = runtime.passes.map((pass) => pass.items.map((item) => item.slice(4)));
    // a1 anchors; its length's peers join one per server per round (c1, then a2), ahead of b1's turn.
    expect(passes.slice(1)).toEqual([
      ["a1:6", "c1:6", "a2:6"],
      ["b1:13", "a3:6"],
    ]);
  });

  it("runs replies of different channels side by side, their steps in the same passes", async () => {
    const { runtime, generate } = setup({ chatSlots: 2 });
    const a = generate("alice", 10, 20);
    const b = generate("bob", 10, 20);
    await Promise.all([a.done, b.done]);
    // Bob's prompt came while Alice's was in flight: it rides with her first step, then every step is shared.
    expect(runtime.passes[1]?.items).toEqual(["step:alice", "prompt:bob"]);
    const both = runtime.passes.filter(
      (pass) => pass.items.includes("step:alice") && pass.items.includes("step:bob"),
    );
    expect(both).toHaveLength(18);
  });

  it("holds a third channel's reply until a chat sequence is free", async () => {
    const { runtime, generate } = setup({ chatSlots: 2 });
    const [a, b, c] = ["alice", "bob", "carol"].map((name) => generate(name, 10, 5));
    await Promise.all([a?.done, b?.done, c?.done]);
    const carolPrompt = runtime.passes.findIndex((pass) => pass.items.includes("prompt:carol"));
    const lastAlice = runtime.passes.findLastIndex((pass) => pass.items.includes("step:alice"));
    expect(carolPrompt).toBeGreaterThan(lastAlice);
  });
});

/** When a generation's first token came out, on the fake clock. */
const firstToken = (job: { generation: FakeGeneration }) =>
  job.generation.completion.tokenTimes[0] ?? Infinity;
const lastToken = (job: { generation: FakeGeneration }) =>
  job.generation.completion.tokenTimes.at(-1) ?? Infinity;
/** The generations' names, by when their first token came out (ties in the order given). */
const byFirstToken = (...jobs: Array<{ generation: FakeGeneration }>) =>
  [...jobs].sort((a, b) => firstToken(a) - firstToken(b)).map((job) => job.generation.name);

describe("Scheduler: a generation that cannot start yet holds back no other", () => {
  it("two text tasks and a mention: the mention's first token waits for neither task", async () => {
    // The default two chat sequences: the tasks leave one to conversations, and the second task waits its turn.
    const { task, generate } = setup({ chatSlots: 2 });
    const first = task("summarize", "sum-1", 30, 200);
    const second = task("summarize", "sum-2", 30, 200);
    await new Promise((resolve) => setImmediate(resolve));
    const mention = generate("alice", 20, 10);
    await Promise.all([first.done, second.done, mention.done]);
    expect(byFirstToken(first, second, mention)).toEqual(["sum-1", "alice", "sum-2"]);
    // Alice was answered in full while the first summary was still being written.
    expect(lastToken(mention)).toBeLessThan(lastToken(first));
    expect(firstToken(second)).toBeGreaterThan(lastToken(first));
  });

  it("with a sequence free for each, two tasks of one kind and a mention generate side by side", async () => {
    const { runtime, task, generate } = setup({ chatSlots: 3 });
    const first = task("summarize", "sum-1", 30, 200);
    const second = task("summarize", "sum-2", 30, 200);
    const mention = generate("alice", 20, 10);
    await Promise.all([first.done, second.done, mention.done]);
    // The first task's prompt went at once; the second's and the mention's shared the next pass, beside its
    // first step: no task waited for the other's warm sequence.
    expect(runtime.passes[1]?.items).toEqual(["step:sum-1", "prompt:sum-2", "prompt:alice"]);
    expect(firstToken(second)).toBe(firstToken(mention));
    expect(
      new Set([first.generation.sequence, second.generation.sequence, mention.generation.sequence]).size,
    ).toBe(3);
  });

  it("keeps one conversation's turns in order, while another conversation goes past them", async () => {
    const { generate } = setup({ chatSlots: 2 });
    const earlier = generate("c1-first", 20, 40, undefined, "c1");
    const later = generate("c1-second", 20, 10, undefined, "c1");
    const other = generate("c2", 20, 10);
    await Promise.all([earlier.done, later.done, other.done]);
    expect(byFirstToken(earlier, other, later)).toEqual(["c1-first", "c2", "c1-second"]);
    // c1's second turn waited for its first on the same warm sequence; c2 never waited for c1's second turn.
    expect(firstToken(later)).toBeGreaterThan(lastToken(earlier));
    expect(later.generation.sequence).toBe(earlier.generation.sequence);
    expect(lastToken(other)).toBeLessThan(lastToken(earlier));
  });
});

describe("Scheduler: interactive work and the credit", () => {
  it("puts an interactive classification in the next pass, ahead of a backlog and without credit", async () => {
    const { runtime, generate, classify, classifyNow } = setup({ slots: 4 });
    const reply = generate("alice", 20, 60);
    await new Promise((resolve) => setImmediate(resolve));
    // The reply's prompt is in flight, no step has been timed yet: no background work may ride along.
    const inFlight = runtime.passes.length;
    const order: string[] = [];
    const backlog = Array.from({ length: 8 }, (_, i) => classify(`m${i}`).then((text) => order.push(text)));
    const urgent = classifyNow("urgent").then((text) => order.push(text));
    await Promise.all([reply.done, urgent, ...backlog]);
    expect(runtime.passes[inFlight + 1]?.items).toEqual(["step:alice", "cls:urgent"]);
    expect(order[0]).toBe("urgent");
  });

  it("lets interactive work ride in a new prompt's pass, which background work never does", async () => {
    const { runtime, generate, classify, classifyNow } = setup({ slots: 4 });
    const backlog = Array.from({ length: 8 }, (_, i) => classify(`m${i}`));
    await new Promise((resolve) => setImmediate(resolve));
    const inFlight = runtime.passes.length;
    const mention = generate("bob", 30, 5);
    const urgent = classifyNow("urgent");
    await Promise.all([mention.done, urgent, ...backlog]);
    expect(runtime.passes[inFlight + 1]?.items).toEqual(["prompt:bob", "cls:urgent"]);
  });

  it("lets a batch too costly for any credit ride once the credit is at its cap, while the reply runs", async () => {
    const floor = 0.35;
    const { runtime, generate, classify } = setup({ slots: 4, floor });
    const reply = generate("alice", 20, 120);
    await new Promise((resolve) => setImmediate(resolve));
    // 400 tokens cost far more than the credit can ever save (2.4 s against 8 allowances of 131 ms).
    const big = classify("big:400");
    await big;
    const rode = runtime.passes.findIndex((pass) => pass.items.includes("cls:big:400"));
    const { tokenTimes } = await reply.done;
    // It rode with a step of the reply, long before the reply ended: it did not starve.
    expect(runtime.passes[rode]?.items).toEqual(["step:alice", "cls:big:400"]);
    expect(runtime.passes[rode]?.endedAt ?? Infinity).toBeLessThan(tokenTimes.at(-1) ?? 0);
    // Until then the credit was saving up: every pass before it was the reply's alone. Each saves less than one
    // allowance (the allowance minus the step), and the cap is eight of them.
    const before = runtime.passes.slice(1, rode);
    expect(before.every((pass) => pass.items.length === 1 && pass.items[0] === "step:alice")).toBe(true);
    expect(before.length).toBeGreaterThanOrEqual(8);
  });
});

describe("Scheduler: fairness and shedding", () => {
  it("serves groups round-robin, so a busy server cannot starve a quiet one", async () => {
    const { classify } = setup({ slots: 1 });
    const order: string[] = [];
    const busy = Array.from({ length: 10 }, (_, i) =>
      classify(`busy-${i}`, "busy").then((text) => order.push(String(text))),
    );
    const quiet = ["quiet-0", "quiet-1"].map((text) =>
      classify(text, "quiet").then((done) => order.push(String(done))),
    );
    await Promise.all([...busy, ...quiet]);
    // busy-0 was already running when the others came; from then on the two servers take turns.
    expect(order.slice(0, 6)).toEqual(["busy-0", "busy-1", "quiet-0", "busy-2", "quiet-1", "busy-3"]);
  });

  it("sheds the busiest group's oldest job when the queue is full", async () => {
    const { scheduler, classify } = setup({ slots: 1, maxQueue: 4 });
    const running = classify("first", "busy");
    const busy = ["b1", "b2", "b3"].map((text) => classify(text, "busy"));
    const quiet = classify("q1", "quiet");
    const overflow = classify("b4", "busy");
    await expect(busy[0]).rejects.toThrow(/queue is full/);
    await expect(Promise.all([running, busy[1], busy[2], quiet, overflow])).resolves.toEqual([
      "first",
      "b2",
      "b3",
      "q1",
      "b4",
    ]);
    expect(scheduler.stats.shedFull).toBe(1);
  });

  it("sheds moderation only after every reaction: a busier moderation queue still keeps its jobs", async () => {
    const { scheduler, lane, classify } = setup({ slots: 1, maxQueue: 4 });
    const moderate = (text: string) =>
      scheduler.classify(lane, text, { priority: "background", group: "moderation:g", shedLast: true });
    const running = classify("first", "g");
    const checks = ["m1", "m2", "m3"].map(moderate);
    const reaction = classify("r1", "g");
    // Full: the queue's busiest group is moderation's, but the reaction goes first.
    const overflow = moderate("m4");
    await expect(reaction).rejects.toThrow(/queue is full/);
    await expect(Promise.all([running, ...checks, overflow])).resolves.toEqual([
      "first",
      "m1",
      "m2",
      "m3",
      "m4",
    ]);
    // With no reaction left to shed, moderation's own oldest goes.
    const more = ["m5", "m6", "m7", "m8", "m9", "m10"].map(moderate);
    const settled = await Promise.allSettled(more);
    expect(settled.filter((outcome) => outcome.status === "rejected")).toHaveLength(1);
    expect(scheduler.stats.shedFull).toBe(2);
  });

  it("sheds a reaction that waited too long, when its turn comes", async () => {
    const { scheduler, generate, classify } = setup({ slots: 1, maxAgeMs: 1_000 });
    // A 500-token prompt holds the pass for 3 s of fake time, and the reaction queued with it waits that long.
    const mention = generate("bob", 500, 1);
    const late = classify("late");
    await expect(late).rejects.toThrow(/waited too long/);
    await mention.done;
    expect(scheduler.stats.shedStale).toBe(1);
  });
});

describe("Scheduler: failures and shutdown", () => {
  it("fails only the job whose classification failed", async () => {
    const { lane, classify } = setup();
    lane.failOn = "bad";
    const results = await Promise.allSettled([classify("good"), classify("bad"), classify("fine")]);
    expect(results.map((result) => result.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("drops a queued job when its caller aborts, and a running reply at the next pass", async () => {
    const { generate, classify } = setup({ slots: 1 });
    const queued = new AbortController();
    const first = classify("first");
    const dropped = classify("dropped", "guild-a", queued.signal);
    queued.abort();
    await expect(dropped).rejects.toBeInstanceOf(JobCancelledError);
    await expect(first).resolves.toBe("first");
    const running = new AbortController();
    const reply = generate("alice", 5, 1_000, running.signal);
    await new Promise((resolve) => setImmediate(resolve));
    running.abort(new JobCancelledError("chat", "the user went away"));
    await expect(reply.done).rejects.toThrow(/the user went away/);
    expect(reply.generation.closed).toBe(true);
  });

  it("on close, cancels what waits, ends what runs, and refuses new work", async () => {
    const { scheduler, generate, classify } = setup({ slots: 1, chatSlots: 1 });
    const reply = generate("alice", 5, 1_000);
    const waiting = generate("bob", 5, 10);
    await new Promise((resolve) => setImmediate(resolve));
    const outcomes = Promise.allSettled([reply.done, waiting.done]);
    scheduler.close();
    const [running, queued] = await outcomes;
    expect(running).toMatchObject({ status: "rejected", reason: { reason: "the model is shutting down" } });
    expect(queued).toMatchObject({ status: "rejected", reason: { reason: "the model is shutting down" } });
    await scheduler.whenIdle();
    expect(reply.generation.closed).toBe(true);
    await expect(classify("late")).rejects.toBeInstanceOf(JobCancelledError);
  });
});

describe("Scheduler: work that needs the model to itself", () => {
  it("runs exclusive work between two passes: the pass in flight finishes first, the queue waits for it", async () => {
    const { runtime, scheduler, generate, classify } = setup({ slots: 2 });
    const reply = generate("alice", 10, 6);
    const first = classify("a");
    await new Promise((resolve) => setImmediate(resolve));
    const passesBefore = runtime.passes.length;
    let sawPassesDuring: number[] = [];
    const exclusive = scheduler.exclusive(async () => {
      // Nothing of the queue runs while this holds the model, however long it takes.
      const at = runtime.passes.length;
      await new Promise((resolve) => setTimeout(resolve, 20));
      sawPassesDuring = [at, runtime.passes.length];
      return "reloaded";
    });
    const queuedAfter = classify("b");
    expect(await exclusive).toBe("reloaded");
    expect(sawPassesDuring[0]).toBe(sawPassesDuring[1]);
    expect(sawPassesDuring[0]).toBeGreaterThanOrEqual(passesBefore);
    // The running reply and the queued work go on afterwards.
    await Promise.all([reply.done, first, queuedAfter]);
    expect((await reply.done).tokens).toBe(6);
  });

  it("rejects exclusive work that waits when the scheduler closes, and refuses it afterwards", async () => {
    const { scheduler, classify } = setup();
    const running = classify("a");
    const waiting = scheduler.exclusive(async () => "never");
    scheduler.close();
    await expect(waiting).rejects.toBeInstanceOf(JobCancelledError);
    // The pass in flight when it closed still returns its result.
    expect(await running).toBe("a");
    await expect(scheduler.exclusive(async () => "late")).rejects.toBeInstanceOf(JobCancelledError);
  });

  it("reports each pass's classifications by lane and its steps, and the queue depth by kind", async () => {
    const reports: PassReport[] = [];
    const { scheduler, generate, classify } = setup({ slots: 4, onPass: (pass) => reports.push(pass) });
    const reactions = ["a", "b", "c"].map((text) => classify(text));
    // The first went straight into a pass; the other two wait for the next.
    expect(scheduler.queueDepth).toEqual({ interactive: 0, background: 2, chat: 0 });
    const reply = generate("alice", 10, 2);
    expect(scheduler.queueDepth.chat).toBe(1);
    await Promise.all([...reactions, reply.done]);
    expect(scheduler.queueDepth).toEqual({ interactive: 0, background: 0, chat: 0 });
    const classified = reports.reduce((sum, pass) => sum + (pass.classifications.sentiment ?? 0), 0);
    const steps = reports.reduce((sum, pass) => sum + pass.generationSteps, 0);
    expect(classified).toBe(3);
    expect(steps).toBe(2);
    expect(reports).toHaveLength(scheduler.stats.passes);
    expect(reports.every((pass) => pass.durationMs > 0)).toBe(true);
  });
});
