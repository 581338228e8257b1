import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const TSX = join(REPO_ROOT, "node_modules", ".bin", "tsx");

export interface RunningProcess {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** stdout's JSON log lines. */
  readonly logs: () => Array<Record<string, unknown>>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/**
 * Runs one of the repo's entry points exactly as `npm start` does (tsx), in an empty working directory so no
 * developer's .env leaks in, with only the environment given.
 */
export async function runEntryPoint(
  script: string,
  env: Record<string, string>,
  options: { stdin?: string; args?: readonly string[] } = {},
): Promise<RunningProcess> {
  const cwd = await mkdtemp(join(tmpdir(), "moodbot-proc-"));
  const child = spawn(TSX, [join(REPO_ROOT, script), ...(options.args ?? [])], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? cwd, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString("utf8");
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8");
  });
  if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) => {
      child.on("exit", (code, signal) => resolve({ code, signal, at: Date.now() }));
    },
  );
  const logs = () =>
    stdout
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    logs,
    exited,
    async waitForLog(msg, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = logs().find((line) => line.msg === msg);
        if (found) return found;
        if (Date.now() > deadline || child.exitCode !== null) {
          throw new Error(`no "${msg}" log line; stdout:\n${stdout}\nstderr:\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
  };
}
