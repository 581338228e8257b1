import type { Logger } from "../logger.js";
import type { HistoryStore } from "./history.js";
import type { Store } from "./openStore.js";

export interface MaintenanceOptions {
  /** How often expired turns are removed from every channel. */
  readonly sweepEveryMs?: number;
  /** How often a due erasure (Redis's append-only file rewrite) is looked for. */
  readonly tickMs?: number;
}

/**
 * The store's housekeeping while the bot runs: expired turns leave busy channels (idle ones expire on their own),
 * and a deletion's erasure that had to wait for Redis's hourly window runs once the window has passed. Its timer
 * never keeps the process alive, and a failed round is logged and tried again on the next one.
 */
export class StoreMaintenance {
  private timer: NodeJS.Timeout | undefined;
  private lastSweep = 0;
  private running: Promise<void> | undefined;
  private readonly sweepEveryMs: number;
  private readonly tickMs: number;

  constructor(
    private readonly store: Store,
    private readonly history: HistoryStore,
    private readonly logger: Logger,
    options: MaintenanceOptions = {},
  ) {
    this.sweepEveryMs = options.sweepEveryMs ?? 3_600_000;
    this.tickMs = options.tickMs ?? 300_000;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref();
  }

  /** A round now, sweeping whether or not one is due (an operator's command, a test). */
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
      if (Date.now() - this.lastSweep >= this.sweepEveryMs) {
        const swept = await this.history.sweep();
        this.lastSweep = Date.now();
        if (swept.removed > 0) {
          this.logger.info(swept, "expired history turns removed");
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
