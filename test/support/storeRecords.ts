import KeyvSqlite from "@keyv/sqlite";
import { createRedisClient } from "../../src/store/redisClient.js";

/** One record as the store holds it: its key, its type, and all of its value as text. */
export interface RawRecord {
  readonly key: string;
  readonly type: string;
  readonly text: string;
}

/**
 * Every record in a store, read over a connection of its own and never through moodbot's code: on SQLite every row
 * of the table, on Redis every key SCAN finds, with its value read whatever its type (strings, lists, sets, sorted
 * sets with their scores, hashes, streams). What the bot's own reads would hide (expired entries, other shapes) is
 * all here.
 */
export async function storeRecords(url: string): Promise<RawRecord[]> {
  return url.startsWith("sqlite://") ? sqliteRecords(url) : redisRecords(url);
}

/** The records whose key or value holds `text`. */
export async function recordsHolding(url: string, text: string): Promise<RawRecord[]> {
  return (await storeRecords(url)).filter(
    (record) => record.key.includes(text) || record.text.includes(text),
  );
}

async function sqliteRecords(url: string): Promise<RawRecord[]> {
  const sqlite = new KeyvSqlite({ uri: url, table: "keyv" });
  try {
    const rows = (await sqlite.query("SELECT key, value FROM keyv")) as Array<{
      key: string;
      value: unknown;
    }>;
    return rows.map((row) => ({ key: row.key, type: "row", text: String(row.value) }));
  } finally {
    await sqlite.close();
  }
}

async function redisRecords(url: string): Promise<RawRecord[]> {
  const client = createRedisClient(url);
  await client.connect();
  try {
    const records: RawRecord[] = [];
    for await (const keys of client.scanIterator({ MATCH: "*", COUNT: 1000 })) {
      for (const key of keys) {
        const type = await client.type(key);
        records.push({ key, type, text: await redisValue(client, key, type) });
      }
    }
    return records;
  } finally {
    await client.quit();
  }
}

async function redisValue(
  client: ReturnType<typeof createRedisClient>,
  key: string,
  type: string,
): Promise<string> {
  switch (type) {
    case "string":
      return (await client.get(key)) ?? "";
    case "list":
      return JSON.stringify(await client.lRange(key, 0, -1));
    case "set":
      return JSON.stringify(await client.sMembers(key));
    case "zset":
      return JSON.stringify(await client.zRangeWithScores(key, 0, -1));
    case "hash":
      return JSON.stringify(await client.hGetAll(key));
    case "stream":
      return JSON.stringify(await client.xRange(key, "-", "+"));
    case "none":
      // Expired or deleted between SCAN and TYPE.
      return "";
    default:
      throw new Error(`record ${key} has a type (${type}) this reader cannot read: teach it`);
  }
}
