import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DeadlineExceeded, withinDeadline } from "../../src/platform/deadline.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/**
 * Runs a module in a child process with the TypeScript loader, and returns its output once it ends. A child still
 * running after `limitMs` is killed, and the test fails saying so.
 */
async function runChild(code: string, limitMs = 20_000): Promise<{ stdout: string; elapsedMs: number }> {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), "--input-type=module", "-e", code],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  let stdout = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  const limit = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const [exitCode, signal] = await once(child, "exit");
  clearTimeout(limit);
  expect(signal, `the child was still running after ${limitMs} ms`).toBeNull();
  expect(exitCode).toBe(0);
  return { stdout, elapsedMs: Date.now() - started };
}

const NEVER = new Promise<never>(() => {});

describe("withinDeadline", () => {
  it("answers with the work's own value or failure when it settles in time", async () => {
    expect(await withinDeadline(Promise.resolve("in time"), 1_000)).toBe("in time");
    await expect(withinDeadline(Promise.reject(new Error("its own failure")), 1_000)).rejects.toThrow(
      "its own failure",
    );
  });

  it("rejects with DeadlineExceeded, naming the deadline, when the work is late; a late failure is no unhandled rejection", async () => {
    let fail: (error: Error) => void = () => {};
    const late = new Promise<never>((_, reject) => {
      fail = reject;
    });
    const error = await withinDeadline(late, 20).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DeadlineExceeded);
    expect(error).toMatchObject({ deadlineMs: 20, message: "no answer within 20 ms" });
    // Vitest fails the run on an unhandled rejection: the late failure must have a handler.
    fail(new Error("failed after the deadline"));
    await expect(late).rejects.toThrow("failed after the deadline");
    expect(await withinDeadline(NEVER, 10).catch((caught: unknown) => caught)).toBeInstanceOf(
      DeadlineExceeded,
    );
  });

  it("keeps the process alive until the deadline by default, and not at all with keepsProcessAlive false", async () => {
    const deadline = join(REPO_ROOT, "src", "platform", "deadline.ts");
    const script = (options: string, ms: number) =>
      `const { withinDeadline } = await import(${JSON.stringify(deadline)});
       withinDeadline(new Promise(() => {}), ${ms}, ${options}).catch((error) => console.log(error.name));`;
    const kept = await runChild(script("{}", 300));
    expect(kept.stdout.trim()).toBe("DeadlineExceeded");
    // A deadline a minute away that does not hold the process: it ends as soon as it has nothing else to do.
    const released = await runChild(script("{ keepsProcessAlive: false }", 60_000));
    expect(released.stdout).toBe("");
  });
});
