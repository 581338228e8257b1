import { errorMessage } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import { DAY_MS, HOUR_MS } from "../platform/time.js";
import type { ErasureOutcome } from "../wording/keys.js";
import type { RedisClient } from "./redisClient.js";

export const AOF_REWRITE_WINDOW_MS = HOUR_MS;
/** How long every shard takes a refusal as the server's answer before asking once more, at a deletion. */
export const AOF_REFUSAL_MS = DAY_MS;
/** Failed rewrites (not refusals) before the rewrite is left to the operator. */
export const AOF_MAX_FAILURES = 3;

/** The errors a server gives for a command it will not run: renamed or disabled, or not allowed by its ACL. */
const REFUSAL = /unknown command|NOPERM|no permissions|not allowed/i;

/**
 * Redis's append-only file keeps every command, so a deleted value stays in the file until the file is rewritten.
 * A rewrite copies the whole dataset, so it runs at most once per window across every process sharing the server:
 * a deletion inside the window marks a rewrite as due, and `due()` (run by the store's maintenance) starts it once
 * the window has passed.
 *
 * Managed Redis (ElastiCache, for one) renames or forbids BGREWRITEAOF. A refusal is logged once by each process
 * and left to the operator: every shard then answers "refused" for a day without asking, nothing is marked as due,
 * and nothing retries. A rewrite that fails for another reason is tried on the next rounds, at most
 * `AOF_MAX_FAILURES` times, then left to the operator the same way.
 */
export class AofRewriter {
  private refusalLogged = false;
  /**
   * A deletion whose rewrite this process could not yet mark as due in Redis (Redis failed right after the
   * delete): `due()` marks it once Redis answers again, so the store's maintenance still runs it.
   */
  private owedHere = false;

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

  private get refusedKey(): string {
    return `${this.prefix}aof-rewrite:refused`;
  }

  private get failuresKey(): string {
    return `${this.prefix}aof-rewrite:failures`;
  }

  /** Called after data was deleted: rewrites now if the window allows, else marks a rewrite as due. */
  async afterDeletion(): Promise<ErasureOutcome> {
    this.owedHere = true;
    if ((await this.client.exists(this.refusedKey)) === 1) {
      this.owedHere = false;
      return "refused";
    }
    await this.client.set(this.dueKey, String(Date.now()));
    this.owedHere = false;
    return this.rewriteIfAllowed();
  }

  /** Starts a due rewrite whose window has passed; returns undefined when none is due. */
  async due(): Promise<ErasureOutcome | undefined> {
    if (this.owedHere) {
      await this.client.set(this.dueKey, String(Date.now()));
      this.owedHere = false;
    }
    if ((await this.client.exists(this.dueKey)) === 0) return undefined;
    if ((await this.client.exists(this.refusedKey)) === 1) {
      await this.client.del(this.dueKey);
      return "refused";
    }
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
      if (REFUSAL.test(errorMessage(error))) return this.leaveToOperator(error, "refused");
      // A rewrite already running copies the data as it was before this deletion: ask again on the next tick.
      await this.client.set(this.dueKey, String(Date.now()));
      await this.client.del(this.lastKey);
      if (/in progress/i.test(errorMessage(error))) {
        this.logger.info("append-only file rewrite already under way: another follows on the next tick");
        return "pending";
      }
      const failures = await this.client.incr(this.failuresKey);
      await this.client.pExpire(this.failuresKey, AOF_REFUSAL_MS);
      if (failures >= AOF_MAX_FAILURES) return this.leaveToOperator(error, "failed");
      this.logger.warn(
        { err: error, failures },
        "append-only file rewrite failed: trying again on the next tick",
      );
      return "pending";
    }
    await this.client.del(this.failuresKey);
    this.logger.info("append-only file rewrite started: deleted values leave Redis's files");
    return "rewriting";
  }

  /** Stops asking: every shard answers "refused" for a day, and nothing is left due to be retried. */
  private async leaveToOperator(error: unknown, why: "refused" | "failed"): Promise<ErasureOutcome> {
    await this.client.set(this.refusedKey, why, { PX: AOF_REFUSAL_MS });
    await this.client.del([this.dueKey, this.failuresKey]);
    if (!this.refusalLogged) {
      this.refusalLogged = true;
      this.logger.warn(
        { err: error, why },
        "Redis will not rewrite its append-only file (BGREWRITEAOF): deleted values stay in the server's files until its operator rewrites them; see docs/operations.md, The store",
      );
    }
    return "refused";
  }
}
