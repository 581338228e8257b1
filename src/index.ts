import { commandsWithTasks } from "../commands/index.js";
import { createBot } from "./discord/createBot.js";
import { resolveShardPlan } from "./discord/shards.js";
import { ConfigError } from "./errors.js";
import { loadModel } from "./llm/model.js";
import { createLogger } from "./logger.js";
import { loadPrompts } from "./prompts.js";
import { missingRuntimeFlags } from "./runtimeFlags.js";
import { loadConfigOrExit, reportStartupError } from "./startupError.js";
import { openStore } from "./store/openStore.js";
import { loadTasks } from "./tasks.js";

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

  let llm: Awaited<ReturnType<typeof loadModel>> | undefined;
  let store: Awaited<ReturnType<typeof openStore>> | undefined;
  try {
    const prompts = loadPrompts();
    const tasks = loadTasks(config.tasksDir);
    llm = await loadModel({
      ...config.model,
      sentiment: config.sentiment,
      prompts,
      tasks,
      logger,
      showDownloadProgress: true,
    });
    store = await openStore(config.storeUrl, logger);
    const shards = await resolveShardPlan(config);
    const bot = createBot({
      llm,
      store,
      logger: logger.child({ shards: shards.ids }),
      config,
      prompts,
      shards,
      commands: commandsWithTasks(tasks),
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
        const botStopped = bot.stop();
        await llm?.close();
        await botStopped;
        await store?.close();
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
    await Promise.allSettled([llm?.close(), store?.close()]).then((results) => {
      for (const result of results) {
        if (result.status === "rejected")
          logger.debug({ err: result.reason }, "cleanup after a failed start failed");
      }
    });
    process.exit(1);
  }
}

await main();
