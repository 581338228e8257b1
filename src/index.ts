import type { App } from "./assembly/app.js";
import { FORWARD_OUTCOMES_FLAG, ParentLink } from "./assembly/parentLink.js";
import type { PromptReloader } from "./assembly/reload.js";
import type { Bot } from "./discord/createBot.js";
import { missingRuntimeFlags } from "./entry/runtimeFlags.js";
import { loadConfigOrExit, reportStartupError } from "./entry/startupError.js";
import type { HealthServer, Readiness } from "./observability/healthServer.js";
import { configSecrets } from "./platform/config.js";
import { ConfigError, DiscordSetupError } from "./platform/errors.js";
import { createLogger, type Logger } from "./platform/logger.js";

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
  let bot: Bot | undefined;
  let health: HealthServer | undefined;
  let reloader: PromptReloader | undefined;
  reloadOnSighup(() => reloader, logger);
  try {
    // The heavy modules (node-llama-cpp, discord.js) load only once the config is known to be good, so a config
    // error is reported at once.
    const [{ assemble }, { createBot }, { resolveShardPlan }, { Metrics }, { startHealthServer }, reload] =
      await Promise.all([
        import("./assembly/app.js"),
        import("./discord/createBot.js"),
        import("./discord/shards.js"),
        import("./observability/metrics.js"),
        import("./observability/healthServer.js"),
        import("./assembly/reload.js"),
      ]);
    const metrics = new Metrics({ processMetrics: config.metrics.port !== undefined });
    // Up before the model loads: a supervisor sees the process alive (/healthz) and not yet ready (/readyz).
    if (config.metrics.port !== undefined) {
      health = await startHealthServer({
        ...config.metrics,
        port: config.metrics.port,
        metrics,
        readiness: (): Readiness => ({
          model: app?.llm.readiness,
          gatewayConnected: bot?.connected ?? false,
          store: app && { reachable: app.store.reachable, bufferedTurns: app.history.bufferedTurns },
        }),
        logger,
      });
    }
    app = await assemble(config, logger, { metrics });
    const shards = await resolveShardPlan(config);
    // A process asked to (a shard child of a forwarding npm run start:sharded, a test) tells its parent over IPC
    // what became of each message; any other process sends nothing.
    const parent = new ParentLink(process);
    if (process.argv.includes(FORWARD_OUTCOMES_FLAG)) {
      app.outcomes.subscribe((outcome) => parent.sendOutcome(outcome));
    }
    bot = createBot({ ...app, metrics, config, shards, logger: logger.child({ shards: shards.ids }) });
    logger.info({ shards: shards.ids, shardCount: shards.count, store: app.store.kind }, "starting");
    reloader = new reload.PromptReloader({ app, bot, logger: logger.child({ component: "reload" }) });
    const stopWatching = config.reload.watch ? reload.watchPrompts(reloader, config, logger) : undefined;
    shutDownOnSignals({ app, bot, health, stopWatching, parent }, logger);
    await login(bot);
  } catch (error) {
    logger.debug({ err: error }, "startup failed");
    reportStartupError(error);
    await health?.close();
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
function shutDownOnSignals(
  parts: {
    app: App;
    bot: Bot;
    health: HealthServer | undefined;
    stopWatching: (() => void) | undefined;
    parent: ParentLink;
  },
  logger: Logger,
): void {
  const { app, bot, health, stopWatching, parent } = parts;
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
      stopWatching?.();
      app.llm.interrupt();
      await bot.stop();
      await app.close();
      await health?.close();
      // The outcomes of the work the shutdown interrupted reach the parent before the process is gone.
      await parent.sent();
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
 * SIGHUP reloads the prompts in place (npm does not pass it on: send it to the node process itself). Until the
 * bot is up there is nothing to reload, and the signal must not end the process, which is its default.
 */
function reloadOnSighup(reloader: () => PromptReloader | undefined, logger: Logger): void {
  process.on("SIGHUP", () => {
    const current = reloader();
    if (current) void current.reload("SIGHUP");
    else logger.warn("SIGHUP ignored: the bot is still starting, and loads the current prompts anyway");
  });
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
