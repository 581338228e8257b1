import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type BotHarness, setUpDryRunModeration, startBotHarness } from "../../testkit/harness.js";
import { type MetricFamily, Scrape } from "../../testkit/prometheus.js";

/*
 * A moderation check the scheduler drops is counted as a shed moderation check, apart from shed reactions: an
 * operator reading moodbot_reactions_shed_total learns how many members went without a mood, nothing else.
 * The model is interrupted, as on shutdown, so every model job the message brings is refused at once.
 */

let h: BotHarness;
let covered: string;
beforeAll(async () => {
  h = await startBotHarness({
    model: { favouredToken: "insult", extraWords: ["ok", "insult", "threat", "harassment", "spam"] },
    withTasks: true,
    channels: 3,
    env: { LLM_CONTEXT_SIZE: "4096" },
  });
  const [first = "", , alertChannel = ""] = h.discord.guilds[0]?.channelIds ?? [];
  covered = first;
  await setUpDryRunModeration(h, alertChannel, covered);
});
afterAll(async () => h?.close());

it("a moderation check shed on shutdown counts in moodbot_moderation_checks_shed_total, not as a shed reaction", async () => {
  h.llm.interrupt();
  const messageId = h.discord.sendMessage({ content: "you absolute clown", channelId: covered });
  const moderation = await h.outcomes.next("shed", { messageId, job: "moderation" });
  expect(moderation.reason).toContain("the model is shutting down");
  // The message's reaction was shed too: that one, and only that one, is a shed reaction.
  const reaction = await h.outcomes.next(
    "shed",
    (shed) => shed.messageId === messageId && shed.job !== "moderation",
  );
  expect(reaction.reason).toContain("the model is shutting down");

  const metrics = new Scrape(parsePrometheusTextFormat(await h.metrics.text()) as MetricFamily[]);
  expect(
    metrics.value("moodbot_moderation_checks_shed_total", { reason: "the_model_is_shutting_down" }),
  ).toBe(1);
  expect(metrics.value("moodbot_reactions_shed_total")).toBe(1);
});
