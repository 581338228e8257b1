import { expect, it } from "vitest";
import { AlertLimiter } from "../../src/discord/alertLimiter.js";
import { HOUR_MS } from "../../src/platform/time.js";

it("allows so many alerts per channel per clock hour, then none until the next hour", () => {
  let now = 10 * HOUR_MS + 5;
  const limiter = new AlertLimiter(2, () => now);
  expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([true, true, false]);
  // Another channel has its own allowance.
  expect(limiter.take("b")).toBe(true);
  now += HOUR_MS;
  expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([true, true, false]);
});
