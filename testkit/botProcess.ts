import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FORWARD_OUTCOMES_FLAG } from "../src/assembly/parentLink.js";
import { isOutcomeEnvelope } from "../src/outcomes/outcomes.js";
import { OutcomeLog } from "./outcomeLog.js";

/** The entry points that run the bot, and so can tell its outcomes. */
const OUTCOME_ENTRY_POINTS = ["src/index.ts", "src/sharded.ts"];

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * The command line of the npm script that runs `script` (npm start for src/index.ts, and so on), as an argv for
 * spawn. Entry-point scripts have the form `node <flags> --import tsx <file>`; tsx is resolved to a path, because
 * the process runs in an empty working directory.
 */
export function entryPointCommand(script: string): string[] {
  const scripts = (
    JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    }
  ).scripts;
  const command = Object.values(scripts).find(
    (line) => line.startsWith("node ") && line.endsWith(` ${script}`),
  );
  if (!command) throw new Error(`no npm script runs ${script} with node`);
  const [, ...args] = command.split(/\s+/);
  const tsx = args.indexOf("tsx");
  if (tsx < 1 || args[tsx - 1] !== "--import")
    throw new Error(`the npm script for ${script} must use --import tsx`);
  args[tsx] = import.meta.resolve("tsx");
  args[args.length - 1] = join(REPO_ROOT, script);
  return [process.execPath, ...args];
}

export interface RunningProcess {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** stdout's JSON log lines. */
  readonly logs: () => Array<Record<string, unknown>>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** What became of each message, as the process (or its shard children) told it over IPC. */
  readonly outcomes: OutcomeLog;
  /**
   * `waiting`, or a failure with the process's output as soon as the process exits first: a wait on an outcome
   * of a process that died fails at once, saying why.
   */
  whileRunning<T>(waiting: Promise<T>, what: string): Promise<T>;
}

/** After a process exits, how long its output and its IPC messages may still take to be read. */
const CLOSE_AFTER_EXIT_MS = 5_000;

/**
 * Runs one of the repo's entry points exactly as its npm script does (Node.js flags, tsx), in an empty working directory so no
 * developer's .env leaks in, with only the environment given.
 */
export async function runEntryPoint(
  script: string,
  env: Record<string, string>,
  options: {
    stdin?: string;
    args?: readonly string[];
    /** Leaves out the Node.js flags the npm script passes, as a bare `node --import tsx` would. */
    withoutNodeFlags?: boolean;
    /** A module to load before everything else, with --import. */
    preload?: string;
    /** Leaves out the flag that asks the bot to tell its outcomes over IPC (on by default for the bot). */
    forwardOutcomes?: boolean;
  } = {},
): Promise<RunningProcess> {
  const cwd = await mkdtemp(join(tmpdir(), "moodbot-proc-"));
  const [node = process.execPath, ...command] = entryPointCommand(script);
  const npmArgs = options.withoutNodeFlags ? command.slice(command.indexOf("--import")) : command;
  const args = options.preload === undefined ? npmArgs : ["--import", options.preload, ...npmArgs];
  // The bot's entry points tell their outcomes over IPC only when asked to.
  const forward =
    options.forwardOutcomes !== false && OUTCOME_ENTRY_POINTS.includes(script) ? [FORWARD_OUTCOMES_FLAG] : [];
  const child = spawn(node, [...args, ...forward, ...(options.args ?? [])], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? cwd, ...env },
    // The IPC channel carries the bot's outcomes (src/outcomes/outcomes.ts); nothing else is sent over it.
    stdio: ["pipe", "pipe", "pipe", "ipc"],
  });
  const outcomes = new OutcomeLog();
  child.on("message", (message: unknown) => {
    if (isOutcomeEnvelope(message)) outcomes.record(message.moodbotOutcome);
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
  // Settles once the process has exited and what it wrote and sent has been read: its stdio and IPC channel
  // closed, or at most CLOSE_AFTER_EXIT_MS after the exit (a child of its own may hold stdout open). `at` is when
  // it exited.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>(
    (resolve) => {
      child.on("exit", (code, signal) => {
        const result = { code, signal, at: Date.now() };
        const late = setTimeout(() => resolve(result), CLOSE_AFTER_EXIT_MS);
        child.on("close", () => {
          clearTimeout(late);
          resolve(result);
        });
      });
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
    outcomes,
    whileRunning(waiting, what) {
      const died = exited.then(({ code, signal }) => {
        throw new Error(
          `the process exited (code ${code}, signal ${signal}) before ${what}; stdout:\n${stdout}\nstderr:\n${stderr}`,
        );
      });
      return Promise.race([waiting, died]);
    },
  };
}
