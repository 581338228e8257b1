import { commandsWithTasks } from "../commands/index.js";
import { type App, assemble } from "./app.js";
import { createBot } from "./discord/createBot.js";
import { resolveShardPlan } from "./discord/shards.js";
import { ConfigError } from "./errors.js";
import { createLogger } from "./logger.js";
import { missingRuntimeFlags } from "./runtimeFlags.js";
import { loadConfigOrExit, reportStartupError } from "./startupError.js";

/** Longest a graceful shutdown may take before the process gives up on it. */
const SHUTDOWN_DEADLINE_MS = 9_000;

/** The only place that starts things: config, logger, model, store, shard plan, bot, login, signal handlers. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ level: config.logLevel, pretty: config.logPretty });
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled promise rejection"));
  process.on("uncaughtException", (error, origin) =>
    logger.fatal({ err: error, origin }, "uncaught exception"),
  );
  const missingFlags = missingRuntimeFlags(process.execArgv);
  if (missingFlags.length > 0) {
    logger.warn(
      { missingFlags },
      "Node.js was started without the flags npm start passes: each model call may hold 1.8 MB until V8 happens to collect it. Start the bot with npm start.",
    );
  }

  let app: App | undefined;
  try {
    const running = await assemble(config, logger, { showDownloadProgress: true });
    app = running;
    const { llm, store } = running;
    const shards = await resolveShardPlan(config);
    const bot = createBot({
      llm,
      store,
      logger: logger.child({ shards: shards.ids }),
      config,
      prompts: running.prompts,
      shards,
      commands: commandsWithTasks(running.tasks),
    });
    logger.info({ shards: shards.ids, shardCount: shards.count, store: store.kind }, "starting");

    let shuttingDown = false;
    const shutdown = async (signal: NodeJS.Signals) => {
      if (shuttingDown) return;
      shuttingDown = true;
      logger.info({ signal }, "shutting down");
      const deadline = setTimeout(() => {
        logger.error("graceful shutdown took too long; exiting");
        process.exit(1);
      }, SHUTDOWN_DEADLINE_MS);
      deadline.unref();
      try {
        // Model work stops first, so every handler finishes at once and keeps what it was interrupted in; the
        // model and the store go only after the handlers are done with them.
        llm.interrupt();
        await bot.stop();
        await running.close();
        logger.info("bye");
        logger.flush();
        process.exit(0);
      } catch (error) {
        logger.error({ err: error }, "graceful shutdown failed");
        logger.flush();
        process.exit(1);
      }
    };
    process.on("SIGINT", (signal) => void shutdown(signal));
    process.on("SIGTERM", (signal) => void shutdown(signal));

    await bot.start().catch((error: unknown) => {
      if ((error as { code?: unknown }).code !== "TokenInvalid") throw error;
      throw new ConfigError(
        "DISCORD_TOKEN",
        "was rejected by Discord",
        "Open your application at https://discord.com/developers/applications, Bot → Reset Token, and put the new token in .env.",
      );
    });
  } catch (error) {
    logger.debug({ err: error }, "startup failed");
    reportStartupError(error);
    await app?.close().catch((closeError: unknown) => {
      logger.debug({ err: closeError }, "cleanup after a failed start failed");
    });
    process.exit(1);
  }
}

await main();
