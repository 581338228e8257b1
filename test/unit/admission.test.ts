import { describe, expect, it } from "vitest";
import { Admission, type AdmissionRequest } from "../../src/llm/admission.js";
import { JobCancelledError } from "../../src/platform/errors.js";
import { createLogger } from "../../src/platform/logger.js";

/** One job's work, held open until the test settles it by hand. */
class Held {
  /** True once the work was called. */
  started = false;
  /** The signal the work was given, once it started. */
  signal: AbortSignal | undefined;
  /** True once the test settled its work. */
  finished = false;
  /** What the caller of `run` gets. */
  readonly result: Promise<string>;
  private settle: { resolve: (value: string) => void; reject: (error: Error) => void } | undefined;

  constructor(
    readonly name: string,
    run: (work: (signal: AbortSignal) => Promise<string>) => Promise<string>,
    onStart: (name: string) => void,
  ) {
    this.result = run((signal) => {
      this.started = true;
      this.signal = signal;
      onStart(name);
      return new Promise<string>((resolve, reject) => {
        this.settle = { resolve, reject };
        // Work that honours its signal, as a server request does.
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    });
  }

  finish(): void {
    this.finished = true;
    this.settle?.resolve(this.name);
  }

  fail(error: Error): void {
    this.finished = true;
    this.settle?.reject(error);
  }
}

function setup(options: { maxInFlight?: number; maxQueue?: number; maxAgeMs?: number } = {}) {
  const clock = { ms: 0 };
  const admission = new Admission({
    logger: createLogger({ level: "silent" }),
    maxInFlight: options.maxInFlight ?? 1,
    maxBackgroundQueue: options.maxQueue ?? 100,
    maxBackgroundAgeMs: options.maxAgeMs ?? 60_000,
    now: () => clock.ms,
  });
  const order: string[] = [];
  const hold = (name: string, request: Partial<AdmissionRequest> = {}): Held =>
    new Held(
      name,
      (work) => admission.run({ kind: "sentiment", priority: "interactive", ...request }, work),
      (started) => order.push(started),
    );
  const background = (name: string, group?: string, extra: Partial<AdmissionRequest> = {}) =>
    hold(name, { priority: "background", ...(group === undefined ? {} : { group }), ...extra });
  /** Finishes `count` jobs of `jobs`, each time the one that started first; returns their names in order. */
  const drain = async (jobs: readonly Held[], count: number): Promise<string[]> => {
    const finished: string[] = [];
    for (let i = 0; i < count; i++) {
      const next = order
        .map((name) => jobs.find((job) => job.name === name))
        .find((job) => job !== undefined && !job.finished);
      if (!next) throw new Error(`nothing of theirs runs after ${finished.join(", ")}`);
      next.finish();
      await next.result;
      finished.push(next.name);
    }
    return finished;
  };
  return { admission, clock, order, hold, background, drain };
}

describe("Admission: places and priorities", () => {
  it("runs work while fewer than maxInFlight run, and the next once one finishes", async () => {
    const { admission, hold } = setup({ maxInFlight: 2 });
    const [a, b, c] = [hold("a"), hold("b"), hold("c")];
    expect([a.started, b.started, c.started]).toEqual([true, true, false]);
    expect(admission.inFlight).toBe(2);
    a.finish();
    await expect(a.result).resolves.toBe("a");
    expect(c.started).toBe(true);
    b.fail(new Error("server said no"));
    await expect(b.result).rejects.toThrow("server said no");
    c.finish();
    await c.result;
    expect(admission.stats).toEqual({
      completed: 2,
      failed: 1,
      shedFull: 0,
      shedStale: 0,
      cancelled: 0,
      passes: 0,
      sharedPasses: 0,
    });
  });

  it("starts waiting interactive work before background work that came earlier", async () => {
    const { hold, background, drain } = setup({ maxInFlight: 1 });
    const running = background("running");
    const jobs = [running, background("b1"), background("b2"), hold("i1"), hold("i2")];
    expect(await drain(jobs, 4)).toEqual(["running", "i1", "i2", "b1"]);
  });

  it("keeps the last free place for interactive work when there are several", async () => {
    const { admission, hold, background } = setup({ maxInFlight: 2 });
    const [b1, b2] = [background("b1"), background("b2")];
    expect([b1.started, b2.started]).toEqual([true, false]);
    const mention = hold("mention", { kind: "chat", generation: true });
    expect(mention.started).toBe(true);
    // A background generation (a text task the bot runs itself) is background work like any other.
    const task = hold("task", { kind: "task:summarize", generation: true, priority: "background" });
    admission.setMaxInFlight(3);
    expect([b2.started, task.started]).toEqual([false, false]);
    expect(admission.queueDepth).toEqual({ interactive: 0, background: 1, chat: 1 });
  });

  it("lets background work take the only place when there is one", () => {
    const { background } = setup({ maxInFlight: 1 });
    expect(background("b1").started).toBe(true);
  });

  it("follows setMaxInFlight: more places start waiting work at once, fewer hold new work back", async () => {
    const { admission, hold } = setup({ maxInFlight: 1 });
    const [a, b, c] = [hold("a"), hold("b"), hold("c")];
    admission.setMaxInFlight(3);
    expect([b.started, c.started]).toEqual([true, true]);
    admission.setMaxInFlight(1);
    const d = hold("d");
    a.finish();
    await a.result;
    b.finish();
    await b.result;
    expect(d.started).toBe(false);
    c.finish();
    await c.result;
    expect(d.started).toBe(true);
    expect(() => admission.setMaxInFlight(0)).toThrow(RangeError);
  });

  it("reports what waits by kind: generations as chat, the rest by priority", () => {
    const { admission, hold, background } = setup({ maxInFlight: 1 });
    hold("running");
    hold("command");
    hold("reply", { kind: "chat", generation: true });
    background("reaction", "g");
    background("check", "moderation:g", { shedLast: true });
    expect(admission.queueDepth).toEqual({ interactive: 1, background: 2, chat: 1 });
  });
});

describe("Admission: fairness and shedding", () => {
  it("serves groups round-robin, so a busy server cannot starve a quiet one", async () => {
    const { background, drain } = setup({ maxInFlight: 1 });
    const busy = Array.from({ length: 6 }, (_, i) => background(`busy-${i}`, "busy"));
    const quiet = ["quiet-0", "quiet-1"].map((name) => background(name, "quiet"));
    // busy-0 was already running when the others came; from then on the two servers take turns.
    expect(await drain([...busy, ...quiet], 6)).toEqual([
      "busy-0",
      "busy-1",
      "quiet-0",
      "busy-2",
      "quiet-1",
      "busy-3",
    ]);
  });

  it("puts work without a group in the group named by the empty string", async () => {
    const { background, drain } = setup({ maxInFlight: 1 });
    const jobs = [
      background("running", "x"),
      background("none"),
      background("empty", ""),
      background("x1", "x"),
    ];
    // One group "": its two jobs take turns with x's, not with each other.
    expect(await drain(jobs, 4)).toEqual(["running", "none", "x1", "empty"]);
  });

  it("sheds the busiest group's oldest job when the queue is full, and never interactive work", async () => {
    const { admission, hold, background, drain } = setup({ maxInFlight: 1, maxQueue: 4 });
    const running = background("first", "busy");
    // The quiet group comes first in the round, but the busiest one is shed from.
    const quiet = background("q1", "quiet");
    const busy = ["b1", "b2", "b3"].map((name) => background(name, "busy"));
    const commands = [hold("c1"), hold("c2")];
    const overflow = background("b4", "busy");
    await expect(busy[0]?.result).rejects.toMatchObject({
      name: "JobCancelledError",
      jobKind: "sentiment",
      reason: "shed: the background queue is full",
    });
    expect(admission.queueDepth).toEqual({ interactive: 2, background: 4, chat: 0 });
    const rest = [running, ...busy.slice(1), quiet, ...commands, overflow];
    expect(await drain(rest, 7)).toEqual(["first", "c1", "c2", "q1", "b2", "b3", "b4"]);
    // Shed work counts as cancelled too, as in the in-process scheduler.
    expect(admission.stats).toMatchObject({ shedFull: 1, cancelled: 1, completed: 7 });
  });

  it("sheds moderation only after every reaction: a busier moderation queue still keeps its jobs", async () => {
    const { admission, background, drain } = setup({ maxInFlight: 1, maxQueue: 4 });
    const moderate = (name: string) => background(name, "moderation:g", { shedLast: true });
    const running = background("first", "g");
    const checks = ["m1", "m2", "m3"].map(moderate);
    const reaction = background("r1", "g");
    // Full: the queue's busiest group is moderation's, but the reaction goes first.
    const overflow = moderate("m4");
    await expect(reaction.result).rejects.toThrow(/queue is full/);
    expect(await drain([running], 1)).toEqual(["first"]);
    // m1 runs; m2 to m6 make five waiting: with no reaction left to shed, moderation's own oldest goes.
    const more = ["m5", "m6"].map(moderate);
    await expect(checks[1]?.result).rejects.toThrow(/queue is full/);
    expect(await drain([...checks, overflow, ...more], 5)).toEqual(["m1", "m3", "m4", "m5", "m6"]);
    expect(admission.stats.shedFull).toBe(2);
  });

  it("sheds background work that waited too long when its turn comes, and no interactive work", async () => {
    const { admission, clock, hold, background, drain } = setup({ maxInFlight: 1, maxAgeMs: 1_000 });
    const running = background("running", "g");
    const late = background("late", "g");
    clock.ms = 500;
    const onTime = background("on-time", "g");
    const command = hold("command");
    clock.ms = 1_500;
    const fresh = background("fresh", "g");
    // Not yet its turn: it still waits, even as more work of its group comes.
    expect(admission.queueDepth.background).toBe(3);
    expect(await drain([running, command], 2)).toEqual(["running", "command"]);
    await expect(late.result).rejects.toMatchObject({
      name: "JobCancelledError",
      reason: "shed: waited too long",
    });
    // It waited exactly the limit: still fresh.
    expect(onTime.started).toBe(true);
    expect(await drain([onTime, fresh], 2)).toEqual(["on-time", "fresh"]);
    expect(admission.stats).toMatchObject({ shedStale: 1, cancelled: 1 });
  });
});

describe("Admission: aborts, close and idleness", () => {
  it("drops waiting work whose caller aborts, and refuses work aborted before it came", async () => {
    const { admission, hold, background } = setup({ maxInFlight: 1 });
    const running = hold("running");
    const caller = new AbortController();
    const waiting = background("waiting", "g", { signal: caller.signal });
    caller.abort();
    await expect(waiting.result).rejects.toMatchObject({
      name: "JobCancelledError",
      reason: "aborted while waiting",
    });
    expect(admission.queueDepth.background).toBe(0);
    const early = hold("early", { signal: caller.signal });
    await expect(early.result).rejects.toMatchObject({ reason: "aborted before it was queued" });
    running.finish();
    await running.result;
    expect(waiting.started || early.started).toBe(false);
    expect(admission.stats.cancelled).toBe(1);
  });

  it("aborts running work's signal when its caller aborts, and fails it with the caller's reason", async () => {
    const { admission, hold } = setup({ maxInFlight: 2 });
    const first = new AbortController();
    const reply = hold("reply", { kind: "chat", generation: true, signal: first.signal });
    first.abort(new JobCancelledError("chat", "the user went away"));
    expect(reply.signal?.aborted).toBe(true);
    await expect(reply.result).rejects.toThrow(/the user went away/);
    // A reason that is no error becomes a JobCancelledError naming the job.
    const second = new AbortController();
    const task = hold("task", { kind: "task:summarize", signal: second.signal });
    second.abort("gone");
    await expect(task.result).rejects.toMatchObject({
      jobKind: "task:summarize",
      reason: "aborted while running",
    });
    expect(admission.stats).toMatchObject({ cancelled: 2, failed: 0 });
    expect(admission.inFlight).toBe(0);
  });

  it("on close, cancels what waits, aborts what runs, and refuses new work", async () => {
    const { admission, hold, background } = setup({ maxInFlight: 2 });
    const running = hold("running", { kind: "chat", generation: true });
    // Work that fails in its own way once aborted (fetch's AbortError) still tells its caller why it stopped.
    const fetching = admission.run(
      { kind: "task:intent", priority: "interactive" },
      (signal) =>
        new Promise((_, reject) =>
          signal.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
        ),
    );
    const [waiting, reaction] = [hold("waiting"), background("reaction", "g")];
    admission.close();
    expect(running.signal?.reason).toMatchObject({ jobKind: "chat", reason: "the model is shutting down" });
    await expect(fetching).rejects.toMatchObject({
      jobKind: "task:intent",
      reason: "the model is shutting down",
    });
    for (const job of [running, waiting, reaction]) {
      await expect(job.result).rejects.toMatchObject({
        name: "JobCancelledError",
        reason: "the model is shutting down",
      });
    }
    await admission.whenIdle();
    expect(waiting.started || reaction.started).toBe(false);
    await expect(hold("late").result).rejects.toMatchObject({ reason: "the model is shutting down" });
    expect(admission.stats).toMatchObject({ cancelled: 4, failed: 0 });
  });

  it("resolves whenIdle only once nothing runs and nothing waits", async () => {
    const { admission, hold } = setup({ maxInFlight: 1 });
    await admission.whenIdle();
    const [a, b] = [hold("a"), hold("b")];
    let idle = false;
    const idled = admission.whenIdle().then(() => (idle = true));
    a.finish();
    await a.result;
    expect(b.started).toBe(true);
    expect(idle).toBe(false);
    b.finish();
    await idled;
    expect(admission.inFlight).toBe(0);
  });
});
