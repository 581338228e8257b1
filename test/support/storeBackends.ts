import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sharedRedis } from "../../testkit/redis.js";

export interface StoreBackend {
  readonly name: string;
  /** A fresh store to open (a STORE_URL), and how to remove it afterwards. */
  setUp(): Promise<{ url: string; tearDown: () => Promise<void> }>;
}

/** Every store backend, so one behaviour suite runs against each: a SQLite file (in a new folder) and Redis. */
export const STORE_BACKENDS: readonly StoreBackend[] = [
  {
    name: "SQLite",
    setUp: async () => {
      const dir = await mkdtemp(join(tmpdir(), "moodbot-store-"));
      return {
        url: `sqlite://${join(dir, "nested", "bot.sqlite")}`,
        tearDown: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: "Redis",
    setUp: async () => {
      const redis = await sharedRedis();
      return { url: redis.url, tearDown: redis.release };
    },
  },
];
