import { REST, Routes } from "discord.js";
import type { Config } from "../platform/config.js";
import { ConfigError } from "../platform/errors.js";

export interface ShardPlan {
  /** The shards this process runs. */
  readonly ids: readonly number[];
  /** Total shards of the bot, across all processes and machines. */
  readonly count: number;
}

/** Discord's recommended shard count, from GET /gateway/bot on the configured API. */
export async function fetchRecommendedShardCount(discord: Config["discord"]): Promise<number> {
  const rest = new REST({ api: discord.apiUrl }).setToken(discord.token);
  const gateway = (await rest.get(Routes.gatewayBot())) as { shards?: unknown };
  const shards = Number(gateway.shards);
  return Number.isInteger(shards) && shards > 0 ? shards : 1;
}

/**
 * Which shards to run. Always explicit, so discord.js never falls back on reading environment variables itself:
 * SHARD_COUNT (a number or auto) and SHARD_IDS. Without SHARD_COUNT a bot process runs one unsharded connection,
 * while the sharding manager (`whenUnset: "auto"`) asks Discord for its recommended count.
 */
export async function resolveShardPlan(
  config: Config,
  whenUnset: "single" | "auto" = "single",
): Promise<ShardPlan> {
  const { ids } = config.sharding;
  const count = config.sharding.count ?? (whenUnset === "auto" ? "auto" : undefined);
  if (count === undefined) return { ids: [0], count: 1 };
  const total = count === "auto" ? await fetchRecommendedShardCount(config.discord) : count;
  const mine = ids ?? Array.from({ length: total }, (_, i) => i);
  const outside = mine.filter((id) => id >= total);
  if (outside.length > 0) {
    throw new ConfigError(
      "SHARD_IDS",
      `lists ${outside.join(", ")}, not below the shard count ${total}`,
      "Each shard id must be below SHARD_COUNT (ids start at 0).",
    );
  }
  return { ids: mine, count: total };
}
