import { expect, it } from "vitest";
import { runSoak } from "../../testkit/soak.js";

it("a smaller soak: the bot stays up, accounts for every message, stays flat, and logs no errors", async () => {
  const report = await runSoak({ messages: 400, channels: 4 });
  expect(report.stillUp).toBe(true);
  expect(report.unaccounted).toBe(0);
  expect(report.unhandledErrors).toBe(0);
  expect(report.errorLogLines).toBe(0);
  // Over the second 200 messages: a leak of 0.4 MB a message fails it (one sampler per evaluation left behind would
  // be 1.8 MB with this vocabulary).
  expect(report.rssGrowthMb).toBeLessThan(80);
  // The mix really was mixed: every kind was sent, and the outcomes cover reactions, replies and skips.
  expect(Object.keys(report.kinds).sort()).toEqual([
    "bot",
    "dm",
    "empty",
    "hostile",
    "huge",
    "mention",
    "normal",
    "webhook",
  ]);
  expect(report.outcomes.reacted).toBeGreaterThan(0);
  expect(report.outcomes.replied).toBeGreaterThan(0);
  expect(report.outcomes["message skipped"]).toBeGreaterThan(0);
}, 300_000);
