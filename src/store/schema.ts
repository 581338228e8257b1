import { StoreError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { HistoryStore } from "./history.js";
import { redact, type Store } from "./openStore.js";

/**
 * The version of the store's layout. 1: turns without ids, kept until pushed out. 2: turns carry member and message
 * ids and a version, each expires with retention, and a member's and a server's data are indexed.
 */
export const STORE_SCHEMA_VERSION = 2;
const VERSION_KEY = "schema-version";

export interface Migration {
  readonly from: number;
  readonly to: number;
  /** Channels whose stored history the migration went through. */
  readonly channels: number;
  /** Expired turns it removed. */
  readonly removed: number;
}

/**
 * Brings a store to this build's layout on start, on SQLite and Redis alike. From 1: every channel's old turns are
 * put under retention (the expired ones removed, each list set to expire with its newest turn); turns without ids
 * stay readable and simply age out. A store written by a newer build is refused rather than misread. Running it
 * twice, or from several shards at once, does no harm.
 */
export async function migrateStore(
  store: Store,
  storeUrl: string,
  history: HistoryStore,
  logger: Logger,
): Promise<Migration> {
  const stored = await store.keyv.get(VERSION_KEY);
  const from = typeof stored === "number" ? stored : 1;
  if (from > STORE_SCHEMA_VERSION) {
    throw new StoreError(
      redact(storeUrl),
      `The store ${redact(storeUrl)} was written by a newer moodbot (layout ${from}; this build reads up to ${STORE_SCHEMA_VERSION}). Run that version, or point STORE_URL at another store.`,
    );
  }
  if (from === STORE_SCHEMA_VERSION) return { from, to: from, channels: 0, removed: 0 };
  const swept = await history.sweep({ setExpiry: true });
  await store.keyv.set(VERSION_KEY, STORE_SCHEMA_VERSION);
  logger.info({ from, to: STORE_SCHEMA_VERSION, ...swept }, "store migrated");
  return { from, to: STORE_SCHEMA_VERSION, ...swept };
}
