import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";

/**
 * A real redis-server (Debian's package; `.ci/run` installs it) on 127.0.0.1 and a free port, with append-only
 * persistence so that a restart keeps every acknowledged write, as production Redis for moodbot should be set up.
 */
export class RedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    /** The server's data folder: its append-only files are here. */
    readonly dir: string,
    private readonly password: string | undefined,
    private readonly extraArgs: readonly string[] = [],
  ) {}

  /** The connection string, with the password when the server requires one. */
  get url(): string {
    const credentials = this.password === undefined ? "" : `:${encodeURIComponent(this.password)}@`;
    return `redis://${credentials}127.0.0.1:${this.port}`;
  }

  /**
   * Starts a server on a free port. Another process can take the port between the probe and redis-server's bind
   * (and `--port 0` turns TCP off in Redis), so a bind failure is retried on a new port.
   */
  static async start(
    options: {
      readonly password?: string;
      /** More redis-server options, such as a managed Redis's `--rename-command BGREWRITEAOF ""`. */
      readonly args?: readonly string[];
    } = {},
  ): Promise<RedisServer> {
    const dir = await mkdtemp(join(tmpdir(), "moodbot-redis-"));
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServer(await freePort(), dir, options.password, options.args);
      try {
        await server.launch();
        return server;
      } catch (error) {
        if (attempt >= 5 || !(error instanceof PortTakenError)) throw error;
      }
    }
  }

  private async launch(): Promise<void> {
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        ...(this.password === undefined ? [] : ["--requirepass", this.password]),
        ...this.extraArgs,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.child = child;
    let output = "";
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000);
      child.stdout?.on("data", (chunk: Buffer) => {
        output += chunk.toString("utf8");
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.on("error", (error) => {
        clearTimeout(timer);
        reject(
          new Error(
            `redis-server could not be run (${error.message}): install it, e.g. apt-get install redis-server`,
          ),
        );
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(
          output.includes("Address already in use")
            ? new PortTakenError(this.port)
            : new Error(`redis-server exited with ${code}:\n${output}`),
        );
      });
    });
    await ready;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    child.kill("SIGTERM");
    await once(child, "exit");
  }

  /**
   * Everything in the append-only files now, as one buffer. A rewrite replaces the files while they are read: one
   * removed between the listing and its read holds nothing any more, and counts as empty.
   */
  async appendOnlyBytes(): Promise<Buffer> {
    const dir = join(this.dir, "appendonlydir");
    const read = async (name: string) => {
      try {
        return await readFile(join(dir, name));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return Buffer.alloc(0);
        throw error;
      }
    };
    return Buffer.concat(await Promise.all((await readdir(dir)).map(read)));
  }

  /** Stops the server and starts it again on the same port and data: an outage, then recovery. */
  async restart(downForMs = 0): Promise<void> {
    await this.stop();
    if (downForMs > 0) await new Promise((resolve) => setTimeout(resolve, downForMs));
    await this.launch();
  }
}

/**
 * The Redis that `.ci/run` starts for the whole test run (MOODBOT_TEST_REDIS_URL), or a fresh one when it is not
 * set. Suites that only read and write use it; suites that stop or restart Redis start their own.
 */
export async function sharedRedis(): Promise<{ url: string; release: () => Promise<void> }> {
  const url = process.env.MOODBOT_TEST_REDIS_URL;
  if (url) return { url, release: async () => undefined };
  const server = await RedisServer.start();
  return { url: server.url, release: () => server.stop() };
}

class PortTakenError extends Error {
  constructor(readonly port: number) {
    super(`port ${port} was taken before redis-server could bind it`);
  }
}
