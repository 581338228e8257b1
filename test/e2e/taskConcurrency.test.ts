import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ensureLongReplyBenchModel } from "../../bench/benchModel.js";
import { DEFAULT_TASKS_DIR } from "../../src/platform/config.js";
import type { RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";
import { waitUntil } from "../../testkit/waitUntil.js";

/*
 * A text task must never hold a mention back. The tiny test model writes a whole summary in a fraction of a
 * second, so a mention queued behind one is answered quickly anyway. The bench's model of the real 0.5B shape
 * favours " lorem", so it writes every summary to its limit, and on a CPU that takes seconds, as with a real model.
 */

/** The shipped /summarize, its limit cut from 200 tokens to keep the test short: still seconds of generation. */
const SUMMARY_TOKENS = 64;
/** The mention's reply: a few tokens, so it is done long before a summary when both generate side by side. */
const REPLY_TOKENS = 8;

const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const originalOf = (token: string) => new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`);

let h: BotHarness;
let tasksDir: string;
beforeAll(async () => {
  // Built once into .cache/bench (about 500 MB) and shared with `npm run bench`.
  const { path } = await ensureLongReplyBenchModel((line) => process.stderr.write(`${line}\n`));
  tasksDir = await mkdtemp(join(tmpdir(), "moodbot-tasks-"));
  const summarize = JSON.parse(await readFile(join(DEFAULT_TASKS_DIR, "summarize.json"), "utf8"));
  summarize.output.maxTokens = SUMMARY_TOKENS;
  await writeFile(join(tasksDir, "summarize.json"), JSON.stringify(summarize));
  h = await startBotHarness({
    withTasks: true,
    env: {
      MODEL_PATH: path,
      TASKS_DIR: tasksDir,
      // Not a tiny model: threads from the cores, as in production.
      LLM_THREADS: "2",
      // A sequence for each summary and one for the mention, so that all three can generate side by side (with
      // the default two, the second summary waits for the first: test/unit/scheduler.test.ts covers both).
      LLM_CHAT_SEQUENCES: "3",
      CHAT_MAX_TOKENS: String(REPLY_TOKENS),
    },
  });
}, 600_000);
afterAll(async () => {
  await h?.close();
  if (tasksDir) await rm(tasksDir, { recursive: true, force: true });
});

it("answers a mention while two /summarize are still being written", async () => {
  const history = ["the raid is at 8", "I'll bring snacks", "can we move it to 9?"].map((content) =>
    h.discord.sendMessage({ content }),
  );
  for (const messageId of history) await h.outcomes.next("reacted", { messageId }, 60_000);

  const summaries = [1, 2].map(
    () =>
      h.discord.sendSlashCommand({ name: "summarize", options: [{ name: "count", type: 4, value: 3 }] })
        .token,
  );
  // Both tasks are at the model (the recorder sees each call as the scheduler queues it), before the mention.
  await waitUntil(() => h.model.callsOf("task").length === 2, {
    timeoutMs: 30_000,
    failure: () => `the model was asked for ${h.model.callsOf("task").length} of 2 tasks`,
  });
  const mention = h.discord.sendMessage({
    content: `<@${h.discord.botUser.id}> what time is the raid?`,
    mentionBot: true,
  });

  const [replied] = await h.outcomes.waitFor("replied", { messageId: mention }, { timeoutMs: 180_000 });
  expect(replied?.fromModel).toBe(true);
  // The reply is complete and neither summary is answered yet: the mention waited for no task. Nothing waits for
  // a sequence either: both summaries are generating, neither queued behind the other.
  const answered = summaries.filter(
    (token) => h.discord.requestsMatching("PATCH", originalOf(token)).length > 0,
  );
  expect(answered).toEqual([]);
  expect(h.model.queueDepth.chat).toBe(0);

  // Both summaries still come, in full.
  for (const token of summaries) {
    const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token), 1, 240_000);
    expect(String(body(edit).content)).toMatch(/lorem/);
  }
}, 600_000);
