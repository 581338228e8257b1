import { tmpdir } from "node:os";
import { join } from "node:path";
import { type HealthServer, startHealthServer } from "../src/observability/healthServer.js";
import type { TinyModelOptions } from "./gguf.js";
import { type BotHarness, startBotHarness } from "./harness.js";
import { type LlamaServer, type LlamaServerOptions, startLlamaServer } from "./llamaServer.js";
import { tinyModel } from "./models.js";
import { type Scrape, scrape } from "./prometheus.js";

/*
 * The real bot on the server runtime: startBotHarness with LLM_SERVER_URL (so it loads no model file), plus the
 * health server wired as src/index.ts wires it, so that a test reads /readyz and /metrics over HTTP.
 */

/** /readyz as a supervisor reads it. */
export interface Readyz {
  readonly status: number;
  readonly body: {
    readonly ready: boolean;
    readonly model: "loaded" | "loading" | "unavailable";
    readonly modelCause?: string;
    readonly gateway: string;
  };
}

export interface ServerBot extends BotHarness {
  readonly healthUrl: string;
  readyz(): Promise<Readyz>;
  scrape(): Promise<Scrape>;
}

/** A tiny model served by llama-server (one thread, 4 unified slots sharing `contextSize`). Stop it in afterAll. */
export async function serveTinyModel(
  model: TinyModelOptions,
  options: Omit<LlamaServerOptions, "modelPath"> = {},
): Promise<LlamaServer> {
  return startLlamaServer({ modelPath: await tinyModel(model), contextSize: 8192, threads: 1, ...options });
}

export async function startServerBot(options: {
  readonly serverUrl: string;
  readonly apiKey?: string;
  readonly env?: Record<string, string>;
  readonly withTasks?: boolean;
  readonly channels?: number;
}): Promise<ServerBot> {
  const h = await startBotHarness({
    env: {
      LLM_SERVER_URL: options.serverUrl,
      // A file that does not exist: were the bot to load a model in its process, it would stop on it.
      MODEL_PATH: join(tmpdir(), "moodbot-server-runtime-no-such-model.gguf"),
      ...(options.apiKey === undefined ? {} : { LLM_SERVER_API_KEY: options.apiKey }),
      ...options.env,
    },
    ...(options.withTasks === undefined ? {} : { withTasks: options.withTasks }),
    ...(options.channels === undefined ? {} : { channels: options.channels }),
  });
  let health: HealthServer;
  try {
    health = await startHealthServer({
      host: "127.0.0.1",
      port: 0,
      metrics: h.metrics,
      readiness: () => ({
        model: h.llm.readiness,
        gatewayConnected: h.bot.connected,
        store: { reachable: h.store.reachable, bufferedTurns: h.app.history.bufferedTurns },
      }),
      logger: h.logger,
    });
  } catch (error) {
    await h.close();
    throw error;
  }
  const healthUrl = `http://127.0.0.1:${health.port}`;
  return {
    ...h,
    healthUrl,
    async readyz(): Promise<Readyz> {
      const response = await fetch(`${healthUrl}/readyz`);
      return { status: response.status, body: (await response.json()) as Readyz["body"] };
    },
    scrape: () => scrape(healthUrl),
    async close() {
      await health.close();
      await h.close();
    },
  };
}
