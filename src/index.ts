import type { App } from "./app.js";
import { configSecrets } from "./config.js";
import type { Bot } from "./discord/createBot.js";
import { ConfigError, DiscordSetupError } from "./errors.js";
import { createLogger, type Logger } from "./logger.js";
import { missingRuntimeFlags } from "./runtimeFlags.js";
import { loadConfigOrExit, reportStartupError } from "./startupError.js";

/** Longest a graceful shutdown may take before the process gives up on it. */
const SHUTDOWN_DEADLINE_MS = 9_000;

/** `npm start`: read the config, assemble the app, connect the bot, and stop cleanly on a signal. */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({
    level: config.logLevel,
    pretty: config.logPretty,
    secrets: configSecrets(config),
  });
  logProcessFaults(logger);
  warnOnMissingRuntimeFlags(logger);
  let app: App | undefined;
  try {
    // The heavy modules (node-llama-cpp, discord.js) load only once the config is known to be good, so a config
    // error is reported at once.
    const [{ assemble }, { createBot }, { resolveShardPlan }] = await Promise.all([
      import("./app.js"),
      import("./discord/createBot.js"),
      import("./discord/shards.js"),
    ]);
    app = await assemble(config, logger);
    const shards = await resolveShardPlan(config);
    const bot = createBot({ ...app, config, shards, logger: logger.child({ shards: shards.ids }) });
    logger.info({ shards: shards.ids, shardCount: shards.count, store: app.store.kind }, "starting");
    shutDownOnSignals(app, bot, logger);
    await login(bot);
  } catch (error) {
    logger.debug({ err: error }, "startup failed");
    reportStartupError(error);
    await app?.close().catch((closeError: unknown) => {
      logger.debug({ err: closeError }, "cleanup after a failed start failed");
    });
    process.exit(1);
  }
}

function logProcessFaults(logger: Logger): void {
  process.on("unhandledRejection", (reason) => logger.error({ err: reason }, "unhandled promise rejection"));
  process.on("uncaughtException", (error, origin) =>
    logger.fatal({ err: error, origin }, "uncaught exception"),
  );
}

function warnOnMissingRuntimeFlags(logger: Logger): void {
  const missingFlags = missingRuntimeFlags(process.execArgv);
  if (missingFlags.length === 0) return;
  logger.warn(
    { missingFlags },
    "Node.js was started without the flags npm start passes: each model call may hold megabytes of native memory until V8 happens to collect it. Start the bot with npm start.",
  );
}

/**
 * SIGINT and SIGTERM stop model work first, so every handler finishes at once and keeps what it was interrupted
 * in; the model and the store close only after the handlers are done with them.
 */
function shutDownOnSignals(app: App, bot: Bot, logger: Logger): void {
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
      app.llm.interrupt();
      await bot.stop();
      await app.close();
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
}

/**
 * Connects. A token Discord rejects (REST 401, or gateway close 4004) becomes a config error that says where to
 * get a new one; disallowed intents (gateway close 4014) say which switch to turn on.
 */
async function login(bot: Bot): Promise<void> {
  try {
    await bot.start();
  } catch (error) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (code === "TokenInvalid" || message === "Authentication failed") {
      throw new ConfigError(
        "DISCORD_TOKEN",
        "was rejected by Discord",
        "Open your application at https://discord.com/developers/applications, Bot → Reset Token, and put the new token in .env.",
      );
    }
    if (code === "DisallowedIntents" || message === "Used disallowed intents") {
      throw new DiscordSetupError(
        "Discord refused the intents the bot needs",
        "Open your application at https://discord.com/developers/applications, Bot → Privileged Gateway Intents, turn on Message Content Intent, save, and start the bot again.",
        { cause: error },
      );
    }
    throw error;
  }
}

await main();
