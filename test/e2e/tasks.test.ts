import { afterAll, beforeAll, expect, it } from "vitest";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const originalOf = (token: string) => new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`);

let h: BotHarness;
beforeAll(async () => {
  h = await startBotHarness({
    // The intent labels as whole tokens, as in Qwen's vocabulary: their first tokens differ, so one pass reads them.
    model: {
      favouredToken: " lorem",
      extraWords: ["question", "request", "complaint", "praise", "chit", "-chat"],
    },
    withTasks: true,
    env: { LLM_CONTEXT_SIZE: "4096" },
  });
});
afterAll(async () => h?.close());

it("/intent classifies a text into the task's labels in one pass", async () => {
  const { token } = h.discord.sendSlashCommand({
    name: "intent",
    options: [{ name: "text", type: 3, value: "can someone pin the rules?" }],
  });
  const [callback] = await h.discord.waitForRequests("POST", new RegExp(`/${token}/callback$`));
  expect(body(callback).type).toBe(5);
  const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
  expect(body(edit).content).toMatch(
    /^\*\*(question|request|complaint|praise|chit-chat)\*\* \(\d+%\)\n-# question \d+% · request \d+% · complaint \d+% · praise \d+% · chit-chat \d+%$/,
  );
  expect(body(edit).allowed_mentions).toEqual({ parse: [] });
  // The model read the member's text, and its answer came from the labels' logits in one pass: the label shown
  // is the one it gave.
  const answers = h.model.taskAnswers.filter((answer) => answer.task === "intent");
  expect(answers.map((answer) => answer.input)).toEqual(["can someone pin the rules?"]);
  const outcome = answers[0]?.outcome;
  if (outcome?.kind !== "labels") throw new Error(`the intent task answered ${JSON.stringify(outcome)}`);
  expect(outcome.result.method).toBe("logits");
  expect(String(body(edit).content).startsWith(`**${outcome.result.label}**`)).toBe(true);
});

it("/summarize reads the channel's last messages and answers with the model's text", async () => {
  for (const text of ["the raid is at 8", "I'll bring snacks", "can we move it to 9?"]) {
    h.discord.sendMessage({ content: text });
  }
  const { token } = h.discord.sendSlashCommand({
    name: "summarize",
    options: [{ name: "count", type: 4, value: 3 }],
  });
  const [fetch] = await h.discord.waitForRequests(
    "GET",
    new RegExp(`^/channels/${h.discord.channelId}/messages$`),
  );
  expect(fetch?.query.get("limit")).toBe("3");
  const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token), 1, 30_000);
  expect(String(body(edit).content)).toMatch(/lorem/);
  expect(String(body(edit).content).length).toBeLessThanOrEqual(2000);
});

it("/keywords reads the channel's last messages and answers with the model's list", async () => {
  for (const text of ["who is bringing the projector?", "the raid moved to friday", "need a healer for it"]) {
    h.discord.sendMessage({ content: text });
  }
  const history = new RegExp(`^/channels/${h.discord.channelId}/messages$`);
  const fetchedBefore = h.discord.requestsMatching("GET", history).length;
  const { token } = h.discord.sendSlashCommand({
    name: "keywords",
    options: [{ name: "count", type: 4, value: 3 }],
  });
  const [callback] = await h.discord.waitForRequests("POST", new RegExp(`/${token}/callback$`));
  expect(body(callback).type).toBe(5);
  const fetches = await h.discord.waitForRequests("GET", history, fetchedBefore + 1);
  expect(fetches.at(-1)?.query.get("limit")).toBe("3");
  const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token), 1, 30_000);
  expect(String(body(edit).content)).toMatch(/lorem/);
  expect(body(edit).allowed_mentions).toEqual({ parse: [] });
});
