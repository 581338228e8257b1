import { describe, expect, it } from "vitest";
import { JobCancelledError } from "../src/errors.js";
import { Scheduler } from "../src/llm/scheduler.js";
import { createLogger } from "../src/logger.js";
import { LogCapture } from "./support/harness.js";

function deferred() {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function makeScheduler(
  options: { maxBackgroundQueue?: number; maxBackgroundAgeMs?: number; now?: () => number } = {},
) {
  const logs = new LogCapture();
  const scheduler = new Scheduler({
    logger: createLogger({ level: "debug", destination: logs.stream }),
    maxBackgroundQueue: options.maxBackgroundQueue ?? 10,
    maxBackgroundAgeMs: options.maxBackgroundAgeMs ?? 30_000,
    ...(options.now ? { now: options.now } : {}),
  });
  return { scheduler, logs };
}

describe("Scheduler", () => {
  it("runs one job at a time, interactive before background, FIFO within a priority", async () => {
    const { scheduler } = makeScheduler();
    const gate = deferred();
    const order: string[] = [];
    const first = scheduler.run("first", "background", async () => {
      await gate.promise;
      order.push("first");
    });
    const jobs = [
      scheduler.run("b1", "background", async () => void order.push("b1")),
      scheduler.run("i1", "interactive", async () => void order.push("i1")),
      scheduler.run("b2", "background", async () => void order.push("b2")),
      scheduler.run("i2", "interactive", async () => void order.push("i2")),
    ];
    gate.resolve();
    await Promise.all([first, ...jobs]);
    expect(order).toEqual(["first", "i1", "i2", "b1", "b2"]);
    expect(scheduler.stats.completed).toBe(5);
  });

  it("sheds the oldest background job when the queue is full, and counts it", async () => {
    const { scheduler, logs } = makeScheduler({ maxBackgroundQueue: 2 });
    const gate = deferred();
    const running = scheduler.run("running", "interactive", () => gate.promise);
    const oldest = scheduler.run("oldest", "background", async () => "ran");
    const middle = scheduler.run("middle", "background", async () => "ran");
    const newest = scheduler.run("newest", "background", async () => "ran");
    await expect(oldest).rejects.toBeInstanceOf(JobCancelledError);
    gate.resolve();
    await running;
    await expect(middle).resolves.toBe("ran");
    await expect(newest).resolves.toBe("ran");
    expect(scheduler.stats.shedFull).toBe(1);
    expect(logs.find("shed: queue full")).toHaveLength(1);
  });

  it("sheds background jobs that waited too long, but never interactive ones", async () => {
    let now = 0;
    const { scheduler } = makeScheduler({ maxBackgroundAgeMs: 1_000, now: () => now });
    const gate = deferred();
    const running = scheduler.run("running", "interactive", () => gate.promise);
    const stale = scheduler.run("stale", "background", async () => "ran");
    const chat = scheduler.run("chat", "interactive", async () => "ran");
    now = 5_000;
    gate.resolve();
    await running;
    await expect(chat).resolves.toBe("ran");
    await expect(stale).rejects.toThrow("waited too long");
    expect(scheduler.stats.shedStale).toBe(1);
  });

  it("cancels a queued job whose signal aborts, and passes the signal to a running one", async () => {
    const { scheduler } = makeScheduler();
    const gate = deferred();
    let seen: AbortSignal | undefined;
    const controller = new AbortController();
    const running = scheduler.run(
      "running",
      "interactive",
      async (signal) => {
        seen = signal;
        await gate.promise;
      },
      controller.signal,
    );
    const waitingController = new AbortController();
    const waiting = scheduler.run("waiting", "background", async () => "ran", waitingController.signal);
    waitingController.abort();
    await expect(waiting).rejects.toBeInstanceOf(JobCancelledError);
    controller.abort();
    expect(seen?.aborted).toBe(true);
    gate.resolve();
    await running;
  });

  it("close() aborts the running job, cancels the queue and refuses new work", async () => {
    const { scheduler } = makeScheduler();
    let aborted = false;
    const started = deferred();
    const running = scheduler.run("running", "interactive", (signal) => {
      started.resolve();
      return new Promise<void>((resolve) => {
        signal.addEventListener("abort", () => {
          aborted = true;
          resolve();
        });
      });
    });
    const queued = scheduler.run("queued", "background", async () => "ran");
    await started.promise;
    scheduler.close();
    await expect(queued).rejects.toBeInstanceOf(JobCancelledError);
    await running;
    await scheduler.whenIdle();
    expect(aborted).toBe(true);
    await expect(scheduler.run("late", "interactive", async () => "ran")).rejects.toThrow("shutting down");
  });

  it("does not start a job that was dequeued just before close()", async () => {
    const { scheduler } = makeScheduler();
    let ran = false;
    const job = scheduler.run("job", "interactive", async () => {
      ran = true;
    });
    scheduler.close();
    await expect(job).rejects.toBeInstanceOf(JobCancelledError);
    expect(ran).toBe(false);
  });

  it("keeps going after a job throws", async () => {
    const { scheduler } = makeScheduler();
    const failing = scheduler.run("bad", "interactive", () => {
      throw new Error("boom");
    });
    await expect(failing).rejects.toThrow("boom");
    await expect(scheduler.run("good", "interactive", async () => 42)).resolves.toBe(42);
    expect(scheduler.stats.failed).toBe(1);
  });
});
