import { readFileSync } from "node:fs";
import { loadModel } from "../../src/llm/model.js";
import { testModelOptions } from "../../testkit/models.js";

/**
 * Run as a child process by test/llm/evaluationMemory.test.ts: loads a model the way the bot does, classifies
 * `count` distinct messages with the result cache off, and prints how much anonymous memory the process gained.
 * With a width above 1, the messages come in bursts of 50 and the model has that many sentiment sequences, so
 * classifications share passes while a queue waits, as in a busy server.
 * Usage: evaluationMemory.ts <model.gguf> <count> [width]
 */
const [modelPath, countArg, widthArg = "1"] = process.argv.slice(2);
if (modelPath === undefined || countArg === undefined)
  throw new Error("usage: evaluationMemory.ts <model> <count> [width]");
const width = Number(widthArg);
const anonymousMb = () =>
  Number(readFileSync("/proc/self/status", "utf8").match(/RssAnon:\s+(\d+) kB/)?.[1] ?? Number.NaN) / 1024;

const llm = await loadModel(
  testModelOptions({
    path: modelPath,
    contextSize: 1024,
    sentimentSequences: width,
    sentiment: { queueSize: 100, maxWaitMs: 60_000, cacheSize: 0 },
  }),
);
// Warm-up: allocator arenas and compute buffers reach their working size.
for (let i = 0; i < 10; i++) await llm.classifySentiment(`warm-up message ${i}`);
const before = anonymousMb();
const burst = width > 1 ? 50 : 1;
for (let i = 0; i < Number(countArg); i += burst) {
  await Promise.all(
    Array.from({ length: burst }, (_, j) => llm.classifySentiment(`message number ${i + j} of the run`)),
  );
}
const after = anonymousMb();
await llm.close();
process.stdout.write(`${JSON.stringify({ passes: Number(countArg), growthMb: after - before })}\n`);
