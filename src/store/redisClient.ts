import { createClient } from "@keyv/redis";

/**
 * The Redis client moodbot uses: commands fail fast while Redis is away (the user gets a short notice instead of
 * a reply that hangs), and reconnection backs off up to 2 s.
 */
export function createRedisClient(url: string) {
  return createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      connectTimeout: 5_000,
      reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000),
    },
  });
}

export type RedisClient = ReturnType<typeof createRedisClient>;
