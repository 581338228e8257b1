import { errorMessage } from "../errors.js";
import type { Logger } from "../logger.js";
import type { RedisClient } from "./redisClient.js";

/** What became of deleted data on disk after a deletion. */
export type ErasureOutcome =
  /** SQLite: freed pages zeroed (secure_delete) and the write-ahead log checkpointed and truncated. */
  | "erased"
  /** Redis: an append-only file rewrite started, which drops the old values from the file. */
  | "rewriting"
  /** Redis: the last rewrite was less than the window ago; the next one is due when the window ends. */
  | "pending";

export const AOF_REWRITE_WINDOW_MS = 3_600_000;

/**
 * Redis's append-only file keeps every command, so a deleted value stays in the file until the file is rewritten.
 * A rewrite copies the whole dataset, so it runs at most once per window across every process sharing the server:
 * a deletion inside the window marks a rewrite as due, and `due()` (run by the store's maintenance) starts it once
 * the window has passed.
 */
export class AofRewriter {
  constructor(
    private readonly client: RedisClient,
    private readonly prefix: string,
    private readonly logger: Logger,
    private readonly windowMs = AOF_REWRITE_WINDOW_MS,
  ) {}

  private get lastKey(): string {
    return `${this.prefix}aof-rewrite:last`;
  }

  private get dueKey(): string {
    return `${this.prefix}aof-rewrite:due`;
  }

  /** Called after data was deleted: rewrites now if the window allows, else marks a rewrite as due. */
  async afterDeletion(): Promise<ErasureOutcome> {
    await this.client.set(this.dueKey, String(Date.now()));
    return this.rewriteIfAllowed();
  }

  /** Starts a due rewrite whose window has passed; returns undefined when none is due. */
  async due(): Promise<ErasureOutcome | undefined> {
    if ((await this.client.exists(this.dueKey)) === 0) return undefined;
    return this.rewriteIfAllowed();
  }

  private async rewriteIfAllowed(): Promise<ErasureOutcome> {
    // SET NX PX: exactly one process wins the window, whichever shard deleted.
    const won = await this.client.set(this.lastKey, String(Date.now()), { NX: true, PX: this.windowMs });
    if (won !== "OK") return "pending";
    await this.client.del(this.dueKey);
    try {
      await this.client.bgRewriteAof();
    } catch (error) {
      // A rewrite already running copies the data as it was before this deletion: ask again on the next tick.
      await this.client.set(this.dueKey, String(Date.now()));
      await this.client.del(this.lastKey);
      if (!/in progress/i.test(errorMessage(error))) throw error;
      this.logger.info("append-only file rewrite already under way: another follows on the next tick");
      return "pending";
    }
    this.logger.info("append-only file rewrite started: deleted values leave Redis's files");
    return "rewriting";
  }
}
