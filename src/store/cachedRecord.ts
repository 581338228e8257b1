import type Keyv from "keyv";
import type { Logger } from "../platform/logger.js";

/** One policy for the small records the bot reads for every message: settings, moderation setups, opt-outs. */
export interface CachedRecordsOptions<T> {
  readonly keyv: Keyv<unknown>;
  readonly logger: Logger;
  /** What the records are, for the log: "settings", "moderation setup", "privacy choice". */
  readonly label: string;
  /**
   * How long a read is trusted before the store is read again: other processes sharing Redis see a change within
   * this time. 0 reads the store every time; the last value read is still kept for when a read fails.
   */
  readonly freshMs: number;
  /** Records kept in memory; beyond this the least recently used are dropped. */
  readonly maxEntries: number;
  /** The record from what the store holds (undefined when it holds nothing). */
  readonly parse: (raw: unknown, key: string) => T;
  /**
   * What a read that fails answers for a key never read: the defaults, or the stricter choice where privacy
   * needs it (an opt-out that cannot be known counts as one).
   */
  readonly unknown: T;
  readonly now?: () => number;
}

interface Entry<T> {
  readonly value: T;
  readonly until: number;
  /** When the value was fetched or written, on this store's own clock of reads and writes. */
  readonly issued: number;
}

/**
 * Keyv records read through a bounded cache, with one outage policy: a read that fails answers the last value read
 * for that key (a store blip changes no setting), or `unknown` for a key never read. An outage is logged when it
 * starts and when it ends, not for every read in between.
 */
export class CachedRecords<T> {
  /** In least-recently-used order: a Map iterates in insertion order, and every use re-inserts. */
  private readonly entries = new Map<string, Entry<T>>();
  /**
   * Counts reads started and writes done. A read that started before a write to its key finished may return the
   * value from before it; comparing these keeps it from putting that value back in the cache.
   */
  private clock = 0;
  private failing = false;
  private readonly now: () => number;

  constructor(private readonly options: CachedRecordsOptions<T>) {
    this.now = options.now ?? Date.now;
  }

  /** The record, from the cache while fresh, else from the store; when the store cannot be read, the last value. */
  async get(key: string): Promise<T> {
    const cached = this.entries.get(key);
    if (cached && cached.until > this.now()) {
      this.touch(key, cached);
      return cached.value;
    }
    try {
      return await this.read(key);
    } catch (error) {
      const remembered = this.entries.get(key);
      if (!this.failing) {
        this.failing = true;
        this.options.logger.warn(
          { err: error, remembered: remembered !== undefined },
          `${this.options.label} unreadable: the last value read holds until the store answers`,
        );
      }
      if (!remembered) return this.options.unknown;
      this.touch(key, remembered);
      return remembered.value;
    }
  }

  /** The record as the store holds it now, never the cache's; throws when the store cannot be read. */
  async read(key: string): Promise<T> {
    const issued = ++this.clock;
    const raw = await this.options.keyv.get(key);
    if (this.failing) {
      this.failing = false;
      this.options.logger.info(`${this.options.label} readable again`);
    }
    const value = this.options.parse(raw, key);
    this.remember(key, value, issued);
    return value;
  }

  /** Stores a record (as `stored`) and keeps `value` as the one in force. */
  async write(key: string, stored: unknown, value: T): Promise<void> {
    await this.options.keyv.set(key, stored);
    this.remember(key, value, ++this.clock);
  }

  /** Removes a record from the store; `value` is what is in force without one. */
  async remove(key: string, value: T): Promise<void> {
    await this.options.keyv.delete(key);
    this.remember(key, value, ++this.clock);
  }

  /** Records held in memory now. */
  get size(): number {
    return this.entries.size;
  }

  private remember(key: string, value: T, issued: number): void {
    const current = this.entries.get(key);
    // A newer read or write already landed: this value is older than the one in force.
    if (current && current.issued > issued) return;
    this.entries.delete(key);
    this.entries.set(key, { value, until: this.now() + this.options.freshMs, issued });
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.options.maxEntries) break;
      this.entries.delete(oldest);
    }
  }

  private touch(key: string, entry: Entry<T>): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
  }
}
