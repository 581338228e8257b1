import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type App, assemble } from "../src/assembly/app.js";
import { type Bot, createBot } from "../src/discord/createBot.js";
import type { Llm } from "../src/llm/llm.js";
import { Metrics } from "../src/observability/metrics.js";
import { portable } from "../src/outcomes/outcomes.js";
import { type Config, configSecrets, loadConfig } from "../src/platform/config.js";
import { createLogger, type Logger } from "../src/platform/logger.js";
import type { Store } from "../src/store/openStore.js";
import { FakeDiscord } from "./fakeDiscord.js";
import type { TinyModelOptions } from "./gguf.js";
import { tinyModel } from "./models.js";
import { OutcomeLog } from "./outcomeLog.js";
import { RecordingLlm } from "./recordingLlm.js";
import { waitUntil } from "./waitUntil.js";

/** Log lines a test can read: the real pino logger, writing JSON into memory. */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  /** Everything written, exactly as it would reach a log file. */
  text = "";
  readonly stream = new Writable({
    write: (chunk: Buffer, _encoding, done) => {
      this.text += chunk.toString("utf8");
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() !== "") this.lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  find(msg: string): Array<Record<string, unknown>> {
    return this.lines.filter((line) => line.msg === msg);
  }
}

export interface BotHarness {
  readonly discord: FakeDiscord;
  readonly bot: Bot;
  readonly llm: Llm;
  /** The model's seam as the bot used it: every call, with the input the model received. */
  readonly model: RecordingLlm;
  readonly app: App;
  readonly metrics: Metrics;
  readonly store: Store;
  readonly config: Config;
  readonly logs: LogCapture;
  /** What became of each message, reply, stored turn and deletion, told by the bot where the work was done. */
  readonly outcomes: OutcomeLog;
  readonly logger: Logger;
  readonly dataDir: string;
  /**
   * Waits, for at most `timeoutMs`, until `count` log lines with this message exist; returns them. Only for tests
   * whose subject is the log itself (what a line holds, that no secret reaches it): what became of a message is
   * waited on through `outcomes`, so that renaming a log line breaks no test.
   */
  waitForLog(msg: string, count?: number, timeoutMs?: number): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

/** The environment a test bot runs with: the fake Discord, a tiny model, a SQLite file in a temp folder. */
export function testEnv(discord: FakeDiscord, modelPath: string, dataDir: string): Record<string, string> {
  return {
    DISCORD_TOKEN: "test-token.abc.def",
    DISCORD_CLIENT_ID: discord.applicationId,
    DISCORD_API_URL: discord.apiUrl,
    MODEL_PATH: modelPath,
    STORE_URL: `sqlite://${join(dataDir, "bot.sqlite")}`,
    LLM_THREADS: "1",
    LLM_CONTEXT_SIZE: "2048",
    // Probing for a GPU takes seconds on a machine without one; the GPU option has its own test.
    LLM_GPU: "off",
    CHAT_MAX_TOKENS: "24",
    LOG_LEVEL: "debug",
  };
}

/** A real bot (real discord.js client, model, SQLite) against the loopback Discord, logged in and ready. */
export async function startBotHarness(
  options: {
    model?: TinyModelOptions;
    env?: Record<string, string>;
    dataDir?: string;
    denyInSecondChannel?: bigint;
    /** Text channels in the fake guild (at least 2). */
    channels?: number;
    /** Serve the prompt-defined tasks in prompts/tasks as commands. */
    withTasks?: boolean;
    /** Environment that depends on the fake server's own ids (channel lists). */
    envFromDiscord?: (discord: FakeDiscord) => Record<string, string>;
  } = {},
): Promise<BotHarness> {
  const discord = await new FakeDiscord({
    ...(options.denyInSecondChannel === undefined
      ? {}
      : { denyInSecondChannel: options.denyInSecondChannel }),
    ...(options.channels === undefined ? {} : { channels: options.channels }),
  }).start();
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "moodbot-test-")));
  const modelPath = await tinyModel(options.model);
  const config = loadConfig({
    ...testEnv(discord, modelPath, dataDir),
    ...options.env,
    ...options.envFromDiscord?.(discord),
  });
  const logs = new LogCapture();
  const logger = createLogger({ level: "trace", destination: logs.stream, secrets: configSecrets(config) });
  const metrics = new Metrics();
  let model: RecordingLlm | undefined;
  const app = await assemble(config, logger, {
    withTasks: options.withTasks === true,
    metrics,
    decorateLlm: (loaded) => {
      model = new RecordingLlm(loaded);
      return model;
    },
  });
  if (!model) throw new Error("assemble did not load a model");
  const { llm, store } = app;
  const outcomes = new OutcomeLog();
  app.outcomes.subscribe((outcome) => outcomes.record(portable(outcome)));
  const bot = createBot({ ...app, metrics, logger, config });
  await bot.start();
  return {
    discord,
    bot,
    llm,
    model,
    app,
    metrics,
    store,
    config,
    logs,
    outcomes,
    logger,
    dataDir,
    async waitForLog(msg, count = 1, timeoutMs = 20_000) {
      await waitUntil(() => logs.find(msg).length >= count, {
        timeoutMs,
        failure: () => `no ${count}× "${msg}" log line in ${timeoutMs} ms`,
      });
      return logs.find(msg);
    },
    async close() {
      llm.interrupt();
      await bot.stop();
      await app.close();
      await discord.stop();
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Turns on dry-run moderation through `/settings moderation`, as an admin would: `covered` is checked and alerts go
 * to `alertChannel`. Resolves once the command has answered that it is on.
 */
export async function setUpDryRunModeration(
  h: BotHarness,
  alertChannel: string,
  covered: string,
): Promise<void> {
  const { token } = h.discord.sendSlashCommand({
    name: "settings",
    options: [
      {
        name: "moderation",
        type: 1,
        options: [
          { name: "mode", type: 3, value: "dry-run" },
          { name: "alert-channel", type: 7, value: alertChannel },
          { name: "cover", type: 7, value: covered },
        ],
      },
    ],
  });
  const [answer] = await h.discord.waitForRequests("PATCH", new RegExp(`/${token}/messages/@original$`));
  const content = String((answer?.body as { content?: unknown } | undefined)?.content);
  if (!content.includes("dry-run"))
    throw new Error(`/settings moderation did not turn dry-run on: ${content}`);
}
