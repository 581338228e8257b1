import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { loadModel } from "../src/llm/inProcess/model.js";
import type { Llm } from "../src/llm/llm.js";
import { MODERATION_TASK } from "../src/pipeline/pipeline.js";
import { inProcessConfig, loadConfig, readEnvironment } from "../src/platform/config.js";
import { createLogger } from "../src/platform/logger.js";
import { loadPrompts } from "../src/prompts/prompts.js";
import { loadTasks, type Task } from "../src/tasks/tasks.js";
import { REPO_ROOT } from "../testkit/botProcess.js";
import { ensureBenchModel } from "./benchModel.js";
import { BENCH_MESSAGES } from "./messages.js";
import { median, round, timed } from "./stats.js";

/*
 * `npm run bench -- --moderation`: what moderation adds per message, on the bench model of the real Qwen2.5-0.5B
 * shape and vocabulary, measured side by side with the same messages:
 * - one message alone: its sentiment pass, then its sentiment and moderation checks issued together as the bot
 *   issues them (they share one decode);
 * - a burst of messages at once: reactions only, then reactions and moderation.
 * Written to bench/moderation.json and bench/moderation.md.
 */

const log = (line: string) => process.stderr.write(`${line}\n`);
const ROUNDS = 3;
const BURST = 40;

export interface ModerationCost {
  readonly threads: number;
  readonly messages: number;
  readonly aloneSentimentMs: number;
  readonly aloneBothMs: number;
  readonly aloneRatio: number;
  readonly burstMessages: number;
  readonly burstSentimentPerSecond: number;
  readonly burstBothPerSecond: number;
  readonly burstRatio: number;
}

export async function benchModeration(): Promise<void> {
  const config = inProcessConfig(loadConfig(readEnvironment(), "console"), "the moderation bench");
  const task = loadTasks(config.tasksDir).find((one) => one.name === MODERATION_TASK);
  if (!task) throw new Error(`${config.tasksDir} has no ${MODERATION_TASK} task`);
  const model = await ensureBenchModel(log);
  const llm = await loadModel({
    ...config.model,
    path: model.path,
    chatSpeedFloor: config.chat.speedFloor,
    sentiment: { ...config.sentiment, queueSize: 10_000, maxWaitMs: 600_000 },
    prompts: loadPrompts(config.promptsDir),
    tasks: [task],
    logger: createLogger({ level: "warn" }),
  });
  try {
    const cost = await measure(llm, task, config.model.threads);
    const table = renderModerationCost(cost);
    await writeFile(join(REPO_ROOT, "bench", "moderation.json"), `${JSON.stringify(cost, null, 2)}\n`);
    await writeFile(join(REPO_ROOT, "bench", "moderation.md"), table);
    process.stdout.write(table);
  } finally {
    await llm.close();
  }
}

async function measure(llm: Llm, task: Task, threads: number): Promise<ModerationCost> {
  const texts = BENCH_MESSAGES.filter((text) => text.trim() !== "");
  const sentiment = (text: string, group: string) => llm.classifySentiment(text, { group });
  const moderation = (text: string, group: string) =>
    llm.runTask(task, text, { priority: "background", group: `moderation:${group}`, shedLast: true });
  // Warm both prefixes and the runtime before anything is timed.
  for (const text of texts.slice(0, 3)) await Promise.all([sentiment(text, "g"), moderation(text, "g")]);

  log("one message at a time: sentiment, then sentiment and moderation together…");
  const alone: number[] = [];
  const both: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const [index, text] of texts.entries()) {
      const runAlone = async () => alone.push((await timed(() => sentiment(text, "g")))[1]);
      const runBoth = async () =>
        both.push((await timed(() => Promise.all([sentiment(text, "g"), moderation(text, "g")])))[1]);
      // Alternating the order spreads drift over both.
      if (index % 2 === 0) {
        await runAlone();
        await runBoth();
      } else {
        await runBoth();
        await runAlone();
      }
    }
  }

  log(`a burst of ${BURST} messages: reactions only, then reactions and moderation…`);
  const burst = Array.from({ length: BURST }, (_, i) => texts[i % texts.length] ?? "");
  const [, sentimentMs] = await timed(() =>
    Promise.all(burst.map((text, i) => sentiment(text, `g${i % 4}`))),
  );
  const [, bothMs] = await timed(() =>
    Promise.all(burst.flatMap((text, i) => [sentiment(text, `g${i % 4}`), moderation(text, `g${i % 4}`)])),
  );
  const aloneSentimentMs = median(alone);
  const aloneBothMs = median(both);
  const burstSentimentPerSecond = (BURST / sentimentMs) * 1000;
  const burstBothPerSecond = (BURST / bothMs) * 1000;
  return {
    threads,
    messages: texts.length,
    aloneSentimentMs: round(aloneSentimentMs),
    aloneBothMs: round(aloneBothMs),
    aloneRatio: round(aloneBothMs / aloneSentimentMs, 2),
    burstMessages: BURST,
    burstSentimentPerSecond: round(burstSentimentPerSecond, 2),
    burstBothPerSecond: round(burstBothPerSecond, 2),
    burstRatio: round(burstSentimentPerSecond / burstBothPerSecond, 2),
  };
}

export function renderModerationCost(cost: ModerationCost): string {
  return [
    `### What moderation adds per message (Qwen2.5-0.5B shape, ${cost.threads} threads)`,
    "",
    "| | Sentiment only | Sentiment and moderation | Ratio |",
    "|---|---|---|---|",
    `| One message alone, p50 | ${cost.aloneSentimentMs} ms | ${cost.aloneBothMs} ms | ${cost.aloneRatio}× |`,
    `| A burst of ${cost.burstMessages} messages | ${cost.burstSentimentPerSecond} messages/s | ${cost.burstBothPerSecond} messages/s | ${cost.burstRatio}× |`,
    "",
  ].join("\n");
}
