import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import KeyvSqlite from "@keyv/sqlite";
import Keyv from "keyv";
import { errorMessage, StoreError } from "../errors.js";
import type { Logger } from "../logger.js";

export type Store = Keyv<unknown>;

const NAMESPACE = "moodbot";

/**
 * Opens the Keyv store named by a connection string and proves it can write, so a read-only or corrupt file fails
 * at startup with a clear message rather than on the first conversation. Errors throw instead of being swallowed:
 * a history write that silently failed would be lost data.
 */
export async function openStore(url: string, logger: Logger): Promise<Store> {
  const adapter = await createAdapter(url);
  const store = new Keyv<unknown>({ store: adapter, namespace: NAMESPACE, throwOnErrors: true });
  store.on("error", (error: unknown) => logger.error({ err: error }, "store error"));
  try {
    const probe = `startup-probe:${process.pid}`;
    await store.set(probe, Date.now());
    await store.delete(probe);
  } catch (error) {
    await store.disconnect().catch((disconnectError: unknown) => {
      logger.debug({ err: disconnectError }, "closing the failed store also failed");
    });
    throw new StoreError(
      url,
      `The store ${url} cannot be opened for writing (${errorMessage(error)}). Check that the file is a SQLite database and that this user may write it and its folder, or point STORE_URL elsewhere.`,
      { cause: error },
    );
  }
  return store;
}

async function createAdapter(url: string) {
  if (url.startsWith("sqlite://")) {
    const file = url.slice("sqlite://".length);
    if (file === "") throw new StoreError(url, "STORE_URL names no file. Use sqlite://data/bot.sqlite.");
    if (file !== ":memory:") {
      const folder = dirname(resolve(file));
      await mkdir(folder, { recursive: true }).catch((error: unknown) => {
        throw new StoreError(
          url,
          `The folder ${folder} for STORE_URL cannot be created (${errorMessage(error)}). Point STORE_URL at a writable place, such as sqlite://data/bot.sqlite.`,
          { cause: error },
        );
      });
    }
    return new KeyvSqlite({ uri: url, busyTimeout: 5_000 });
  }
  throw new StoreError(
    url,
    `STORE_URL ${url} uses a backend this build does not support. Use sqlite://path/to/file.sqlite.`,
  );
}
