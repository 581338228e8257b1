import { StoreError } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import type { HistoryStore } from "./history.js";
import { redact, type Store } from "./openStore.js";

/**
 * The version of the store's layout. 1: turns without ids, kept until pushed out. 2: turns carry member and message
 * ids and a version, each expires with retention, and a member's and a server's data are indexed. 3: each index
 * entry expires with the data it leads to (Redis: sorted sets scored by expiry, instead of sets; SQLite: each id
 * with its expiry, instead of an array), and deleted members have tombstones.
 */
export const STORE_SCHEMA_VERSION = 3;
const VERSION_KEY = "schema-version";

export interface Migration {
  readonly from: number;
  readonly to: number;
  /** Channels whose stored history the migration went through. */
  readonly channels: number;
  /** Expired turns it removed. */
  readonly removed: number;
  /** Index sets whose entries it dated. */
  readonly indexSets: number;
}

/**
 * Brings a store to this build's layout on start, on SQLite and Redis alike. From 1: every channel's old turns are
 * put under retention (the expired ones removed, each list set to expire with its newest turn); turns without ids
 * stay readable and simply age out. From 2: every index entry is given the retention from now. A store written by
 * a newer build is refused rather than misread. Running it twice, or from several shards at once, does no harm;
 * shards of the older build must be stopped first, as they would write index sets of the old kind.
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
  if (from === STORE_SCHEMA_VERSION) return { from, to: from, channels: 0, removed: 0, indexSets: 0 };
  const swept = from < 2 ? await history.sweep({ setExpiry: true }) : { channels: 0, removed: 0 };
  const indexSets = await store.index.upgrade(history.retentionMs);
  await store.keyv.set(VERSION_KEY, STORE_SCHEMA_VERSION);
  const migration = { from, to: STORE_SCHEMA_VERSION, ...swept, indexSets };
  logger.info(migration, "store migrated");
  return migration;
}
