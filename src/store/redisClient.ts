import { createClient } from "@keyv/redis";

/** Connection attempts at startup before the bot gives up on an unreachable Redis (about 2 s in all). */
const STARTUP_ATTEMPTS = 5;
/** Longest wait between reconnection attempts once the bot has been connected. */
const MAX_RECONNECT_DELAY_MS = 1_000;

/**
 * The Redis client moodbot uses. Commands fail fast while Redis is away (the user gets a short notice instead of
 * a reply that hangs). At startup an unreachable Redis is an error after a few attempts, so the bot stops with
 * a clear message instead of waiting forever; once connected, it reconnects for as long as it takes, backing off
 * up to a second so that it is back promptly when Redis is.
 */
export function createRedisClient(url: string) {
  let connected = false;
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5_000,
      reconnectStrategy: (retries: number, cause: Error) => {
        if (!connected && retries >= STARTUP_ATTEMPTS) return cause;
        return Math.min(100 * 2 ** retries, MAX_RECONNECT_DELAY_MS);
      },
    },
  });
  client.on("ready", () => {
    connected = true;
  });
  return client;
}

export type RedisClient = ReturnType<typeof createRedisClient>;
