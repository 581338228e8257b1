import type { Logger } from "../platform/logger.js";
import { HOUR_MS, MINUTE_MS } from "../platform/time.js";
import type { HistoryStore } from "./history.js";
import type { Store } from "./openStore.js";

export interface MaintenanceOptions {
  /** How often expired turns are removed from every channel. */
  readonly sweepEveryMs?: number;
  /** How often a due erasure (Redis's append-only file rewrite) is looked for. */
  readonly tickMs?: number;
  /** The clock the store's retention sweep reads; tests move it instead of waiting. */
  readonly now?: () => number;
}

/**
 * The store's housekeeping while the bot runs. Every hour, retention: expired turns leave busy channels, and every
 * record past its expiry leaves the store (mood counts per channel and per member, index entries, tombstones, idle
 * histories); Redis expires whole keys itself, but @keyv/sqlite deletes an expired row only when it is read, and
 * nobody reads a count nobody asks for. Every tick, a deletion's erasure that had to wait for Redis's hourly window
 * runs once the window has passed. Its timer never keeps the process alive, and a failed round is logged and tried
 * again on the next one.
 */
export class StoreMaintenance {
  private timer: NodeJS.Timeout | undefined;
  private lastSweep = 0;
  private running: Promise<void> | undefined;
  private readonly sweepEveryMs: number;
  private readonly tickMs: number;
  private readonly now: () => number;

  constructor(
    private readonly store: Store,
    private readonly history: HistoryStore,
    private readonly logger: Logger,
    options: MaintenanceOptions = {},
  ) {
    this.sweepEveryMs = options.sweepEveryMs ?? HOUR_MS;
    this.tickMs = options.tickMs ?? 5 * MINUTE_MS;
    this.now = options.now ?? Date.now;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref();
  }

  /**
   * A round now, sweeping whether or not one is due. No command or signal exposes it: tests call it instead of
   * waiting for the hourly timer. (The first round after a start, one tick in, always sweeps.)
   */
  runNow(): Promise<void> {
    this.lastSweep = 0;
    return this.tick();
  }

  /** Stops the timer and waits for a round in progress. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One round: the sweep when it is due, then any due erasure. */
  tick(): Promise<void> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<void> {
    try {
      if (this.now() - this.lastSweep >= this.sweepEveryMs) {
        const turns = await this.history.sweep();
        const records = await this.store.sweepExpired(this.now());
        this.lastSweep = this.now();
        if (turns.removed + records.records + records.indexEntries > 0) {
          this.logger.info({ turns: turns.removed, ...records }, "expired data removed from the store");
          await this.store.eraseDeleted();
        }
      }
      const erasure = await this.store.eraseDue();
      if (erasure !== undefined) this.logger.debug({ erasure }, "due erasure");
    } catch (error) {
      this.logger.warn({ err: error }, "store maintenance failed; retrying on the next round");
    }
  }
}
