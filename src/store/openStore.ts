import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import KeyvRedis from "@keyv/redis";
import KeyvSqlite from "@keyv/sqlite";
import Keyv from "keyv";
import type { SharedResultStore } from "../llm/sharedResultCache.js";
import { errorMessage, StoreError } from "../platform/errors.js";
import type { Logger } from "../platform/logger.js";
import type { ErasureOutcome } from "../wording/keys.js";
import { AofRewriter } from "./erasure.js";
import { type IdIndex, KeyvIdIndex, RedisIdIndex } from "./idIndex.js";
import { KeyvMoodTally, type MoodTally, RedisMoodTally } from "./moodTally.js";
import { createRedisClient } from "./redisClient.js";
import { RedisResultCache } from "./redisResultCache.js";
import {
  KeyvTombstones,
  keyvSecret,
  redisSecret,
  TOMBSTONE_SECRET_KEY,
  type Tombstones,
} from "./tombstones.js";
import { KeyvTurnLog, RedisTurnLog, type TurnLog } from "./turnLog.js";

/** The bot's storage: a Keyv for plain values, and the per-channel turn log, atomic where processes share it. */
export interface Store {
  readonly kind: "sqlite" | "redis";
  readonly keyv: Keyv<unknown>;
  readonly turns: TurnLog;
  readonly moods: MoodTally;
  /** Finds a member's or a server's data without a scan. */
  readonly index: IdIndex;
  /** Notes of deleted members, so that no process writes their data back. */
  readonly tombstones: Tombstones;
  /**
   * Deletes what retention has ended, as of `now`: every record past its expiry (SQLite, whose rows expire only
   * when read; Redis expires its keys itself) and every index entry past its own.
   */
  sweepExpired(now: number): Promise<SweptRecords>;
  /**
   * Makes what was just deleted unrecoverable from the store's files, or schedules it: SQLite zeroes freed pages
   * and truncates its write-ahead log at once; Redis rewrites its append-only file at most once an hour.
   */
  eraseDeleted(): Promise<ErasureOutcome>;
  /** Runs an erasure that was due but had to wait (Redis's hourly window); undefined when none is due. */
  eraseDue(): Promise<ErasureOutcome | undefined>;
  /** The sentiment result cache that every process on this store shares; SQLite is one process's, so none. */
  readonly resultCache: SharedResultStore | undefined;
  /** Whether the store is connected now: Redis can go away and come back; a SQLite file is always there. */
  readonly reachable: boolean;
  close(): Promise<void>;
}

/** What a retention sweep of the store removed. */
export interface SweptRecords {
  /** Whole records: mood counts, index sets, tombstones, idle histories. */
  readonly records: number;
  /** Entries of index sets that are still in use. */
  readonly indexEntries: number;
}

export interface OpenStoreOptions {
  /** Slots and lifetime of the shared result cache; 0 slots turns it off. */
  readonly resultCache?: { readonly slots: number; readonly ttlSeconds: number };
}

const NAMESPACE = "moodbot";

/**
 * Opens the store named by a connection string and proves it can write, so a read-only or corrupt file, or an
 * unreachable Redis, fails at startup with a clear message rather than on the first conversation. Errors throw
 * instead of being swallowed: a history write that silently failed would be lost data.
 */
export async function openStore(url: string, logger: Logger, options: OpenStoreOptions = {}): Promise<Store> {
  const store = await connect(url, logger, options);
  try {
    const probe = `startup-probe:${process.pid}`;
    await store.keyv.set(probe, Date.now());
    await store.keyv.delete(probe);
  } catch (error) {
    await store.close().catch((closeError: unknown) => {
      logger.debug({ err: closeError }, "closing the failed store also failed");
    });
    throw new StoreError(
      redact(url),
      `The store ${redact(url)} cannot be opened for writing (${errorMessage(error)}). ${
        store.kind === "redis"
          ? "Check that Redis is running and reachable at STORE_URL."
          : "Check that the file is a SQLite database and that this user may write it and its folder, or point STORE_URL elsewhere."
      }`,
      { cause: error },
    );
  }
  return store;
}

function connect(url: string, logger: Logger, options: OpenStoreOptions): Promise<Store> {
  if (url.startsWith("sqlite://")) return connectSqlite(url, logger);
  if (url.startsWith("redis://") || url.startsWith("rediss://")) return connectRedis(url, logger, options);
  throw new StoreError(
    redact(url),
    `STORE_URL ${redact(url)} uses a backend this build does not support. Use sqlite://path/to/file.sqlite or redis://host:6379.`,
  );
}

/** One SQLite file, its folder created when missing; one process owns it. */
async function connectSqlite(url: string, logger: Logger): Promise<Store> {
  const file = url.slice("sqlite://".length);
  if (file === "")
    throw new StoreError(redact(url), "STORE_URL names no file. Use sqlite://data/bot.sqlite.");
  if (file !== ":memory:") {
    const folder = dirname(resolve(file));
    await mkdir(folder, { recursive: true }).catch((error: unknown) => {
      throw new StoreError(
        redact(url),
        `The folder ${folder} for STORE_URL cannot be created (${errorMessage(error)}). Point STORE_URL at a writable place, such as sqlite://data/bot.sqlite.`,
        { cause: error },
      );
    });
  }
  const sqlite = new KeyvSqlite({ uri: url, busyTimeout: 5_000, table: SQLITE_TABLE });
  const keyv = new Keyv<unknown>({ store: sqlite, namespace: NAMESPACE, throwOnErrors: true });
  // Every caller handles and logs a failed read or write itself (history buffers it); this only traces them.
  keyv.on("error", (error: unknown) => logger.debug({ err: error }, "store error"));
  if (file !== ":memory:") {
    // Write-ahead logging: a write that returned survives the process being killed, and a writer holding the
    // file (a backup, a second process) does not block reads. secure_delete zeroes what a deletion frees, so a
    // member's deleted words do not linger in free pages.
    try {
      await sqlite.query("PRAGMA journal_mode=WAL");
      await sqlite.query("PRAGMA secure_delete=ON");
    } catch (error) {
      await keyv.disconnect().catch((closeError: unknown) => {
        logger.debug({ err: closeError }, "closing the failed store also failed");
      });
      throw new StoreError(
        redact(url),
        `The store ${redact(url)} cannot be opened for writing (${errorMessage(error)}). Check that the file is a SQLite database and that this user may write it and its folder, or point STORE_URL elsewhere.`,
        { cause: error },
      );
    }
  }
  const keysWithPrefix = async (prefix: string): Promise<string[]> => {
    const rows = (await sqlite.query(
      `SELECT key FROM ${SQLITE_TABLE} WHERE key LIKE ? ESCAPE '\\'`,
      `${escapeLike(`${NAMESPACE}:${prefix}`)}%`,
    )) as Array<{ key: string }>;
    return rows.map((row) => row.key.slice(NAMESPACE.length + 1));
  };
  const eraseDeleted = async (): Promise<ErasureOutcome> => {
    // The log holds page images from before the deletion until it is checkpointed into the file and truncated.
    if (file !== ":memory:") await sqlite.query("PRAGMA wal_checkpoint(TRUNCATE)");
    return "erased";
  };
  const index = new KeyvIdIndex(keyv, keysWithPrefix);
  const sweepExpired = async (now: number): Promise<SweptRecords> => {
    const indexEntries = await index.sweep(now);
    // Keyv keeps a row's expiry inside its JSON value; a value that is not JSON is no record of ours to judge.
    const rows = (await sqlite.query(
      `DELETE FROM ${SQLITE_TABLE} WHERE key LIKE ? ESCAPE '\\' AND (CASE WHEN json_valid(value) THEN json_extract(value, '$.expires') END) <= ? RETURNING key`,
      `${escapeLike(`${NAMESPACE}:`)}%`,
      now,
    )) as unknown[];
    return { records: rows.length, indexEntries };
  };
  return {
    kind: "sqlite",
    keyv,
    turns: new KeyvTurnLog(keyv, keysWithPrefix),
    moods: new KeyvMoodTally(keyv),
    index,
    tombstones: new KeyvTombstones(keyv, keyvSecret(keyv)),
    sweepExpired,
    eraseDeleted,
    eraseDue: async () => undefined,
    resultCache: undefined,
    reachable: true,
    close: () => keyv.disconnect(),
  };
}

const SQLITE_TABLE = "keyv";

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (char) => `\\${char}`);
}

/** Redis, which every shard process can share: history, mood tallies and the result cache. */
async function connectRedis(url: string, logger: Logger, options: OpenStoreOptions): Promise<Store> {
  const client = createRedisClient(url);
  // node-redis emits connection errors as events; unheard, they would crash the process.
  let lastError = "";
  client.on("error", (error: unknown) => {
    const message = errorMessage(error);
    if (message !== lastError) logger.error({ err: error }, "redis connection error");
    lastError = message;
  });
  client.on("ready", () => {
    if (lastError !== "") logger.info("redis connection restored");
    lastError = "";
  });
  try {
    await client.connect();
  } catch (error) {
    if (client.isOpen) client.destroy();
    throw new StoreError(
      redact(url),
      `Cannot connect to Redis at ${redact(url)} (${errorMessage(error)}). Start Redis, or check the host, port and password in STORE_URL.`,
      { cause: error },
    );
  }
  const keyv = new Keyv<unknown>({
    // node-redis's generic client types do not line up under exactOptionalPropertyTypes; it is the same client.
    store: new KeyvRedis(client as unknown as ConstructorParameters<typeof KeyvRedis>[0], {
      throwOnErrors: true,
    }),
    namespace: NAMESPACE,
    throwOnErrors: true,
  });
  keyv.on("error", (error: unknown) => logger.debug({ err: error }, "store error"));
  const aof = new AofRewriter(client, `${NAMESPACE}:`, logger.child({ component: "store" }));
  const index = new RedisIdIndex(client, `${NAMESPACE}:index:`);
  return {
    kind: "redis",
    keyv,
    turns: new RedisTurnLog(client, `${NAMESPACE}:turns:`),
    moods: new RedisMoodTally(client, `${NAMESPACE}:`),
    index,
    tombstones: new KeyvTombstones(keyv, redisSecret(client, `${NAMESPACE}:${TOMBSTONE_SECRET_KEY}`)),
    // Every record with a retention has a TTL that Redis enforces itself; only entries inside index sets are left.
    sweepExpired: async (now) => ({ records: 0, indexEntries: await index.sweep(now) }),
    eraseDeleted: () => aof.afterDeletion(),
    eraseDue: () => aof.due(),
    resultCache:
      options.resultCache && options.resultCache.slots > 0
        ? new RedisResultCache(client, { prefix: `${NAMESPACE}:sentiment-cache:`, ...options.resultCache })
        : undefined,
    get reachable() {
      return client.isReady;
    },
    close: async () => {
      // A graceful QUIT needs a live connection; while Redis is away, drop the socket instead of waiting.
      if (client.isReady) await client.quit();
      else if (client.isOpen) client.destroy();
    },
  };
}

/** Connection strings can carry a password: never print it. */
export function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, "//[redacted]@");
}
