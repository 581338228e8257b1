import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { ShardingManager } from "discord.js";
import { type Config, configSecrets } from "./config.js";
import type { ShardPlan } from "./discord/shards.js";
import { ConfigError } from "./errors.js";
import { createLogger, type Logger } from "./logger.js";
import { NODE_RUNTIME_FLAGS } from "./runtimeFlags.js";
import { loadConfigOrExit, reportStartupError } from "./startupError.js";

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
    const manager = await shardingManager(config, plan, logger);
    stopOnSignals(manager, logger);
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
      "Shard processes must share history: set STORE_URL=redis://host:6379 (see README, Running at scale).",
    );
  }
}

async function shardingManager(config: Config, plan: ShardPlan, logger: Logger): Promise<ShardingManager> {
  // discord.js loads only once the config is known to be good.
  const { ShardingManager } = await import("discord.js");
  const manager = new ShardingManager(fileURLToPath(new URL("./index.ts", import.meta.url)), {
    token: config.discord.token,
    totalShards: plan.count,
    shardList: [...plan.ids],
    mode: "process",
    respawn: true,
    // Each child runs exactly as npm start does: the same Node.js flags, TypeScript through tsx.
    execArgv: [...NODE_RUNTIME_FLAGS, "--import", import.meta.resolve("tsx")],
  });
  manager.on("shardCreate", (shard) => {
    logger.info({ shardId: shard.id }, "shard process started");
    shard.on("death", () => logger.warn({ shardId: shard.id }, "shard process exited"));
  });
  return manager;
}

/** SIGINT or SIGTERM stops respawning and sends SIGTERM to every child, which then shuts down gracefully. */
function stopOnSignals(manager: ShardingManager, logger: Logger): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping shard processes");
    manager.respawn = false;
    await Promise.all(
      [...manager.shards.values()].map(async (shard) => {
        const child = shard.process;
        if (!child || child.exitCode !== null) return;
        child.kill("SIGTERM");
        await once(child, "exit");
      }),
    );
    logger.info("bye");
    process.exit(0);
  };
  process.on("SIGINT", (signal) => void stop(signal));
  process.on("SIGTERM", (signal) => void stop(signal));
}

await main();
