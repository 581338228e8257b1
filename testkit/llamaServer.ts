import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.js";

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
/** The server's log is kept this far back: enough for a startup failure's reason. */
const MAX_LOG_CHARS = 256 * 1024;
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
const BIND_ATTEMPTS = 5;

export interface LlamaServerOptions {
  readonly modelPath: string;
  /** Passed as LLAMA_API_KEY (not on the command line, where `ps` shows it). */
  readonly apiKey?: string;
  /** `-np`: without it llama-server runs 4 slots sharing one unified KV cache, as the README's command does. */
  readonly slots?: number;
  /** `-c`: the whole KV cache (all slots' share with unified KV); the server's default otherwise. */
  readonly contextSize?: number;
  /** One thread suits the tiny test models. */
  readonly threads?: number;
  readonly extraArgs?: readonly string[];
  /** A given port (a server the bot was told about before it started); a free one otherwise. */
  readonly port?: number;
}

/**
 * The llama-server binary that `deploy/build-llama-server.sh` built from the bundle (the script returns at once
 * when it is built, and builds it in about 4 minutes otherwise). A missing build tool fails with the script's line.
 */
export function llamaServerBinary(): string {
  try {
    const output = execFileSync("bash", [join(REPO_ROOT, "deploy", "build-llama-server.sh")], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 15 * 60_000,
    });
    const binary = lastLine(output);
    if (!binary) throw new Error("deploy/build-llama-server.sh printed no path");
    return binary.startsWith("/") ? binary : join(REPO_ROOT, binary);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr;
    const line = stderr ? lastLine(stderr) : undefined;
    throw new Error(line ?? `deploy/build-llama-server.sh failed: ${(error as Error).message}`);
  }
}

/**
 * Starts llama-server on 127.0.0.1 and a free port (or `options.port`), and waits until /health answers 200. Stop it
 * in afterAll.
 */
export async function startLlamaServer(options: LlamaServerOptions): Promise<LlamaServer> {
  const binary = llamaServerBinary();
  for (let attempt = 1; ; attempt++) {
    const server = new LlamaServer(binary, options, options.port ?? (await freePort()));
    try {
      await server.launch();
      return server;
    } catch (error) {
      await server.stop();
      // A given port that is taken stays taken: only a free port of our own choosing is worth another try.
      const retry = options.port === undefined && error instanceof PortTakenError;
      if (attempt >= BIND_ATTEMPTS || !retry) throw error;
    }
  }
}

export class LlamaServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = "";
  private readonly killOnExit = () => this.child?.kill("SIGKILL");

  constructor(
    private readonly binary: string,
    private readonly options: LlamaServerOptions,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** stdout and stderr so far (the last 256 KiB). */
  log(): string {
    return this.output;
  }

  /** Sends a signal without waiting: SIGKILL for a crash, SIGSTOP/SIGCONT for a server that hangs. */
  kill(signal: NodeJS.Signals): void {
    this.child?.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within 10 s; resolves once it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGCONT");
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await this.exited;
      clearTimeout(timer);
    }
    process.off("exit", this.killOnExit);
    this.child = undefined;
  }

  /** Stops the server and starts it again on the same port: an outage, then recovery. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** @internal Spawns the process and waits for /health. */
  async launch(): Promise<void> {
    const { options } = this;
    const threads = String(options.threads ?? 1);
    const args = [
      ["-m", options.modelPath],
      ["--host", "127.0.0.1", "--port", String(this.port)],
      ["-t", threads, "-tb", threads],
      options.contextSize === undefined ? [] : ["-c", String(options.contextSize)],
      options.slots === undefined ? [] : ["-np", String(options.slots)],
      options.extraArgs ?? [],
    ].flat();
    const env = {
      ...process.env,
      ...(options.apiKey === undefined ? {} : { LLAMA_API_KEY: options.apiKey }),
    };
    this.output = "";
    const child = spawn(this.binary, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    let spawnError: Error | undefined;
    // A binary that cannot run emits "error", and maybe no "exit": either ends the wait.
    this.exited = new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.once("error", (error) => {
        spawnError = error;
        resolve();
      });
    });
    process.once("exit", this.killOnExit);
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-MAX_LOG_CHARS);
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    await this.waitForHealth(child, () => spawnError);
  }

  private async waitForHealth(child: ChildProcess, spawnError: () => Error | undefined): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const exited = this.exited.then(() => "exited" as const);
    while (Date.now() < deadline) {
      const outcome = await Promise.race([
        exited,
        fetch(`${this.url}/health`, { signal: AbortSignal.timeout(2_000) }).then(
          (response) => response.status,
          () => 0,
        ),
      ]);
      if (outcome === "exited") {
        const error = spawnError();
        if (error) throw new Error(`llama-server could not be run (${error.message}): ${this.binary}`);
        if (/couldn't bind|address already in use/i.test(this.output)) throw new PortTakenError(this.port);
        throw new Error(
          `llama-server exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${this.output.slice(-4000)}`,
        );
      }
      if (outcome === 200) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(
      `llama-server did not answer /health with 200 within ${READY_TIMEOUT_MS} ms:\n${this.output.slice(-4000)}`,
    );
  }
}

function lastLine(text: string): string | undefined {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .at(-1);
}

class PortTakenError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} was taken before llama-server could bind it`);
  }
}
