import { expect, it } from "vitest";
import { runSoak, SOAK_RSS_GROWTH_LIMIT_MB } from "../../testkit/soak.js";

it("a smaller soak: the bot stays up, accounts for every message, stays flat, and logs no errors", async () => {
  const report = await runSoak({ messages: 400, channels: 4 });
  expect(report.stillUp).toBe(true);
  expect(report.unaccountedSamples, `${report.unaccounted} messages unaccounted for`).toEqual([]);
  expect(report.unhandledErrors).toBe(0);
  expect(report.errorLogLines).toBe(0);
  // Over the second 200 messages; testkit/soak.ts argues the bound from what the soaks measured.
  expect(report.rssGrowthMb).toBeLessThan(SOAK_RSS_GROWTH_LIMIT_MB);
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
  expect(report.outcomes["skipped message"]).toBeGreaterThan(0);
}, 300_000);
