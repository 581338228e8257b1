import { basename } from "node:path";
import { loadModel } from "../src/llm/inProcess/model.js";
import { inProcessConfig, loadConfig, readEnvironment } from "../src/platform/config.js";
import { createLogger } from "../src/platform/logger.js";
import { loadPrompts, renderChatTurns } from "../src/prompts/prompts.js";
import { BENCH_MESSAGES, tenTurnHistory } from "./messages.js";
import type { ModelCost } from "./models.js";
import { mean, median, round, timed } from "./stats.js";

/*
 * What one model file costs on this machine, measured in a process of its own (so its memory is its own) and
 * printed as one JSON line: `node <flags> --import tsx bench/modelCost.ts <file.gguf>`. bench/models.ts runs it
 * for `npm run bench -- --model <file>` and `npm run bench -- --shapes`. The model is loaded the way the bot loads
 * it, with the bot's settings from the environment.
 */

const LATENCY_MESSAGES = 20;
const BURST_MESSAGES = 40;
const CHAT_TOKENS = 32;

async function measure(path: string): Promise<ModelCost> {
  const config = inProcessConfig(loadConfig(readEnvironment(), "console"), "the pass-cost fit");
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  const [llm, loadMs] = await timed(() =>
    loadModel({
      ...config.model,
      path,
      chatSpeedFloor: config.chat.speedFloor,
      // What the model costs, not what the bot sheds under load: nothing waits too long, nothing is cached.
      sentiment: { ...config.sentiment, maxWaitMs: 3_600_000, queueSize: 10_000 },
      prompts: loadPrompts(),
      logger: createLogger({ level: "silent" }),
    }),
  );
  const rssAfterLoad = process.memoryUsage().rss;
  try {
    const latencies: number[] = [];
    const tokens: number[] = [];
    let method = "";
    for (const text of BENCH_MESSAGES.slice(0, LATENCY_MESSAGES)) {
      const [result, ms] = await timed(() => llm.classifySentiment(text, { priority: "interactive" }));
      latencies.push(ms);
      tokens.push(result.evaluatedTokens);
      method = result.method;
    }
    const burst = Array.from(
      { length: BURST_MESSAGES },
      (_, i) => `${BENCH_MESSAGES[i % BENCH_MESSAGES.length]} ${i}`,
    );
    const [, burstMs] = await timed(() => Promise.all(burst.map((text) => llm.classifySentiment(text))));

    const turns = renderChatTurns(loadPrompts(), {
      botName: "moodbot",
      history: tenTurnHistory(),
      authorName: "dave",
      message: "so who is casting?",
    });
    const started = performance.now();
    let firstAt = Number.NaN;
    const completion = await llm.generateChat(turns, {
      channelKey: "bench",
      maxTokens: CHAT_TOKENS,
      temperature: 0,
      onText: () => {
        if (Number.isNaN(firstAt)) firstAt = performance.now();
      },
    });
    const afterFirstS = (performance.now() - firstAt) / 1000;
    return {
      file: basename(path),
      sizeMb: 0,
      threads: config.model.threads,
      loadMs: round(loadMs, 0),
      rssAfterLoadMb: Math.round(rssAfterLoad / 1e6),
      peakRssMb: Math.round(Math.max(peakRss, process.memoryUsage().rss) / 1e6),
      sentiment: {
        method,
        p50Ms: round(median(latencies), 0),
        meanTokens: round(mean(tokens)),
        burstMessages: BURST_MESSAGES,
        burstMs: round(burstMs, 0),
        perSecond: round((BURST_MESSAGES * 1000) / burstMs),
      },
      chat: {
        coldFirstTokenMs: round(firstAt - started, 0),
        promptTokens: completion.evaluatedPromptTokens,
        generatedTokens: completion.generatedTokens,
        tokensPerSecond: round(Math.max(0, completion.generatedTokens - 1) / afterFirstS),
      },
    };
  } finally {
    clearInterval(sampler);
    await llm.close();
  }
}

const file = process.argv[2];
if (file === undefined) {
  process.stderr.write("usage: bench/modelCost.ts <file.gguf>\n");
  process.exit(2);
}
const { size } = await import("node:fs/promises").then((fs) => fs.stat(file));
const cost = await measure(file);
process.stdout.write(`${JSON.stringify({ ...cost, sizeMb: Math.round(size / 1e6) })}\n`);
