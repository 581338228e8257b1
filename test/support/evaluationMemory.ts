import { existsSync, readFileSync } from "node:fs";
import { type PerformanceEntry, PerformanceObserver, performance } from "node:perf_hooks";
import { loadModel } from "../../src/llm/inProcess/model.js";
import { testModelOptions } from "../../testkit/models.js";

/**
 * Run as a child process by test/llm/evaluationMemory.test.ts: loads a model the way the bot does, classifies
 * `count` distinct messages with the result cache off, and prints how much anonymous memory the process gained,
 * with what the collections that ran allow the test to conclude whatever V8 chose to do: how many full
 * collections ran, the most evaluations that finished between two of them, and how many finished after the last
 * collection of any kind (their samplers cannot have been freed yet).
 * With a width above 1, the messages come in bursts of 50 and the model has that many sentiment sequences, so
 * classifications share passes while a queue waits, as in a busy server.
 * Usage: evaluationMemory.ts <model.gguf> <count> [width]
 */
const [modelPath, countArg, widthArg = "1"] = process.argv.slice(2);
if (modelPath === undefined || countArg === undefined)
  throw new Error("usage: evaluationMemory.ts <model> <count> [width]");
const STATUS = "/proc/self/status";
if (!existsSync(STATUS) || !/RssAnon:/.test(readFileSync(STATUS, "utf8")))
  throw new Error(`${STATUS} with an RssAnon line (Linux) is needed to measure anonymous memory`);
const width = Number(widthArg);
const anonymousMb = () =>
  Number(readFileSync(STATUS, "utf8").match(/RssAnon:\s+(\d+) kB/)?.[1] ?? Number.NaN) / 1024;

/** V8's collections as they happen: when each started, and whether it was a full (mark-compact) one. */
const collections: Array<{ at: number; full: boolean }> = [];
const MAJOR = 4;
const noted = (entries: readonly PerformanceEntry[]) => {
  for (const entry of entries) {
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    collections.push({ at: entry.startTime, full: kind === MAJOR });
  }
};
const observer = new PerformanceObserver((list) => noted(list.getEntries()));
observer.observe({ entryTypes: ["gc"] });

const llm = await loadModel(
  testModelOptions({
    path: modelPath,
    contextSize: 1024,
    sentimentSequences: width,
    sentiment: { queueSize: 100, maxWaitMs: 60_000 },
  }),
);
// Warm-up: allocator arenas and compute buffers reach their working size.
for (let i = 0; i < 10; i++) await llm.classifySentiment(`warm-up message ${i}`);
const startedAt = performance.now();
const before = anonymousMb();
const burst = width > 1 ? 50 : 1;
const finishedAt: number[] = [];
for (let i = 0; i < Number(countArg); i += burst) {
  await Promise.all(
    Array.from({ length: burst }, (_, j) =>
      llm
        .classifySentiment(`message number ${i + j} of the run`)
        .then(() => finishedAt.push(performance.now())),
    ),
  );
}
const measuredAt = performance.now();
const after = anonymousMb();
noted(observer.takeRecords());
observer.disconnect();
await llm.close();

const during = collections.filter((c) => c.at >= startedAt && c.at <= measuredAt).sort((a, b) => a.at - b.at);
const lastCollection = during.at(-1)?.at ?? startedAt;
const fullAt = [startedAt, ...during.filter((c) => c.full).map((c) => c.at), measuredAt];
const between = fullAt
  .slice(1)
  .map((end, i) => finishedAt.filter((t) => t > (fullAt[i] ?? 0) && t <= end).length);
process.stdout.write(
  `${JSON.stringify({
    passes: Number(countArg),
    growthMb: after - before,
    collections: during.length,
    fullCollections: during.filter((c) => c.full).length,
    mostBetweenFullCollections: Math.max(...between),
    finishedSinceLastCollection: finishedAt.filter((t) => t > lastCollection).length,
  })}\n`,
);
