import type { LlamaModel, Token } from "node-llama-cpp";
import { median, round } from "./stats.js";

/**
 * node-llama-cpp's experimental KV-cache quantisation, measured on the bot's own context shape: how much memory the
 * context takes (the process's resident memory before and after creating it, and llama.cpp's own state size once
 * a prompt is in) and what a 13-token pass costs, for the default f16 cache and for q8_0.
 */
export async function measureKvCache(
  model: LlamaModel,
  shape: { contextSize: number; sequences: number; threads: number; batchSize: number },
) {
  const rows = [];
  for (const type of ["F16", "Q8_0"] as const) {
    const before = process.memoryUsage().rss;
    const context = await model.createContext({
      ...shape,
      experimentalKvCacheKeyType: type,
      experimentalKvCacheValueType: type,
    });
    const rssMb = (process.memoryUsage().rss - before) / 1024 / 1024;
    const sequence = context.getSequence();
    const prefix = model.tokenize("The bot reads every message in the channel. ".repeat(30), false);
    await sequence.evaluateWithoutGeneratingNewTokens(prefix);
    const input = model
      .tokenize("this patch is actually so good, thank you devs, really", false)
      .slice(0, 13) as Token[];
    const times: number[] = [];
    for (let i = 0; i < 7; i++) {
      const started = performance.now();
      await sequence.evaluateWithoutGeneratingNewTokens(input);
      times.push(performance.now() - started);
      await sequence.eraseContextTokenRanges([{ start: prefix.length, end: sequence.nextTokenIndex }]);
    }
    rows.push({
      type: type.toLowerCase(),
      contextRssMb: round(rssMb, 0),
      sequenceStateMb: round(sequence.contextTokens.length > 0 ? context.stateSize / 1024 / 1024 : 0, 1),
      pass13Ms: round(median(times)),
    });
    await context.dispose();
  }
  return rows;
}
