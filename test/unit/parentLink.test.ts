import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isOutcomeEnvelope } from "../../src/outcomes/outcomes.js";
import { REPO_ROOT } from "../../testkit/botProcess.js";

/** Runs testkit/outcomeSender.ts with an IPC channel, and counts the outcomes that arrived once it has closed. */
async function receivedFrom(args: readonly string[]): Promise<string[]> {
  const child = spawn(
    process.execPath,
    ["--import", import.meta.resolve("tsx"), join(REPO_ROOT, "testkit", "outcomeSender.ts"), ...args],
    { stdio: ["ignore", "ignore", "pipe", "ipc"] },
  );
  const ids: string[] = [];
  let stderr = "";
  child.on("message", (message: unknown) => {
    if (isOutcomeEnvelope(message) && "messageId" in message.moodbotOutcome)
      ids.push(String(message.moodbotOutcome.messageId));
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  // 'close' comes after the exit and after the IPC channel has closed: every message sent has been read.
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (exitCode) => resolve(exitCode));
  });
  if (code !== 0) throw new Error(`the sender exited with ${code}: ${stderr}`);
  return ids;
}

describe("ParentLink", () => {
  it("delivers every outcome sent before the process exits, in order", async () => {
    // 2,000 long replies are megabytes: far more than the pipe holds, so most are still queued at the exit.
    const ids = await receivedFrom(["2000"]);
    expect(ids).toEqual(Array.from({ length: 2000 }, (_, index) => String(index)));
  });

  it("sends nothing, and waits for nothing, in a process without an IPC channel", async () => {
    const child = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), join(REPO_ROOT, "testkit", "outcomeSender.ts"), "10"],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    expect(code).toBe(0);
  });
});
