import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { ShardingManager } from "discord.js";
import { FORWARD_OUTCOMES_FLAG, ParentLink } from "./assembly/parentLink.js";
import type { ShardPlan } from "./discord/shards.js";
import { NODE_RUNTIME_FLAGS } from "./entry/runtimeFlags.js";
import { loadConfigOrExit, reportStartupError } from "./entry/startupError.js";
import { CONFIG_TABLE, type Config, configSecrets } from "./platform/config.js";
import { ConfigError } from "./platform/errors.js";
import { createLogger, type Logger } from "./platform/logger.js";

/** Children get a generous start: each loads the model before it connects. */
const SPAWN_TIMEOUT_MS = 10 * 60_000;

/**
 * `npm run start:sharded`: discord.js's ShardingManager runs one child process per shard on this machine, each a
 * full bot (src/index.ts) with its own model. SHARD_COUNT (default auto) and SHARD_IDS choose the shards; they
 * must share a store, so SQLite is refused when there is more than one.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({
    level: config.logLevel,
    pretty: config.logPretty,
    secrets: configSecrets(config),
  }).child({
    role: "sharding-manager",
  });
  try {
    const { resolveShardPlan } = await import("./discord/shards.js");
    const plan = await resolveShardPlan(config, "auto");
    assertSharedStore(config, plan);
    // The shard children's outcomes go on to this process's own parent, where there is one.
    const parent = new ParentLink(process);
    const manager = await shardingManager(config, plan, parent, logger);
    stopOnSignals(manager, parent, logger);
    forwardSighup(manager, logger);
    logger.info({ shardCount: plan.count, shards: plan.ids }, "spawning shard processes");
    await manager.spawn({ amount: plan.count, timeout: SPAWN_TIMEOUT_MS });
  } catch (error) {
    logger.debug({ err: error }, "sharding manager failed");
    reportStartupError(error);
    process.exit(1);
  }
}

function assertSharedStore(config: Config, plan: ShardPlan): void {
  if (plan.ids.length > 1 && !config.storeUrl.startsWith("redis")) {
    throw new ConfigError(
      "STORE_URL",
      "is a SQLite file, which one process owns",
      "Shard processes must share history: set STORE_URL=redis://host:6379 (see docs/performance.md, Running at scale).",
    );
  }
}

async function shardingManager(
  config: Config,
  plan: ShardPlan,
  parent: ParentLink,
  logger: Logger,
): Promise<ShardingManager> {
  // discord.js loads only once the config is known to be good.
  const { ShardingManager } = await import("discord.js");
  // From the TypeScript sources (npm run start:sharded) the children run through tsx; from the compiled build
  // (the container) they run the compiled entry point with no compiler at all.
  const fromSource = import.meta.url.endsWith(".ts");
  const entry = fileURLToPath(new URL(fromSource ? "./index.ts" : "./index.js", import.meta.url));
  const manager = new ShardingManager(entry, {
    token: config.discord.token,
    totalShards: plan.count,
    shardList: [...plan.ids],
    mode: "process",
    respawn: true,
    // The children tell their outcomes only when this process was asked to pass them on.
    shardArgs: process.argv.includes(FORWARD_OUTCOMES_FLAG) ? [FORWARD_OUTCOMES_FLAG] : [],
    // Each child runs exactly as npm start does: the same Node.js flags.
    execArgv: fromSource
      ? [...NODE_RUNTIME_FLAGS, "--import", import.meta.resolve("tsx")]
      : [...NODE_RUNTIME_FLAGS],
  });
  manager.on("shardCreate", (shard) => {
    // One metrics server per process: the first child on METRICS_PORT, the next on METRICS_PORT + 1, and so on.
    const metricsPort = config.metrics.port;
    if (metricsPort !== undefined) {
      (shard.env as Record<string, string>)[CONFIG_TABLE.metrics.fields.port.name] = String(
        metricsPort + plan.ids.indexOf(shard.id),
      );
    }
    logger.info({ shardId: shard.id }, "shard process started");
    shard.on("death", () => logger.warn({ shardId: shard.id }, "shard process exited"));
    shard.on("message", (message: unknown) => parent.relay(message));
  });
  return manager;
}

/**
 * SIGINT or SIGTERM stops respawning and sends SIGTERM to every child, which then shuts down gracefully. A child
 * is done once its IPC channel has closed as well: only then has every outcome it sent been read here.
 */
function stopOnSignals(manager: ShardingManager, parent: ParentLink, logger: Logger): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping shard processes");
    manager.respawn = false;
    await Promise.all(
      [...manager.shards.values()].map(async (shard) => {
        const child = shard.process;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const disconnected = child.connected ? once(child, "disconnect") : undefined;
        child.kill("SIGTERM");
        await Promise.all([once(child, "exit"), disconnected]);
      }),
    );
    await parent.sent();
    logger.info("bye");
    process.exit(0);
  };
  process.on("SIGINT", (signal) => void stop(signal));
  process.on("SIGTERM", (signal) => void stop(signal));
}

/** SIGHUP reloads the prompts in every child, each of which reloads its own model's prefixes. */
function forwardSighup(manager: ShardingManager, logger: Logger): void {
  process.on("SIGHUP", () => {
    const children = [...manager.shards.values()].filter((shard) => shard.process?.exitCode === null);
    logger.info(
      { children: children.length },
      "forwarding SIGHUP: reloading the prompts in every shard process",
    );
    for (const shard of children) shard.process?.kill("SIGHUP");
  });
}

await main();
