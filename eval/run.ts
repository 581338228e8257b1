import { mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { loadConfig, readEnvironment } from "../src/config.js";
import { reportStartupError } from "../src/startupError.js";
import { loadDataset, type Split } from "./dataset.js";
import { METHODS, type MethodName, renderEvalTable, runEval } from "./evaluate.js";

/**
 * `npm run eval [-- --model PATH] [--methods bot,grammar,article,article-vote,lexicon] [--split dev|holdout|all]
 * [--out DIR]`: scores each method on the labelled set, offline, and writes <DIR>/<model>.json and .md
 * (eval/results by default).
 */
try {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      methods: { type: "string", default: METHODS.join(",") },
      split: { type: "string", default: "dev" },
      out: { type: "string" },
    },
  });
  const config = loadConfig(readEnvironment(), "console");
  const methods = (values.methods ?? "").split(",").map((m) => m.trim()) as MethodName[];
  const unknown = methods.filter((m) => !(METHODS as readonly string[]).includes(m));
  if (unknown.length > 0)
    throw new Error(`unknown method ${unknown.join(", ")}; the methods are ${METHODS.join(", ")}`);
  const split = values.split as Split;
  if (!["dev", "holdout", "all"].includes(split)) throw new Error("--split is dev, holdout or all");
  const modelPath = values.model ?? config.model.path;
  const examples = loadDataset(split);
  const results = await runEval({
    modelPath,
    methods,
    examples,
    split,
    devExamples: loadDataset("dev"),
    neutralThreshold: config.sentiment.neutralThreshold,
    threads: config.model.threads,
    log: (line) => process.stderr.write(`${line}\n`),
  });
  const name = modelPath === undefined ? "no-model" : basename(modelPath).replace(/\.gguf$/i, "");
  const dir = values.out ?? fileURLToPath(new URL("./results/", import.meta.url));
  await mkdir(dir, { recursive: true });
  const table = renderEvalTable(results);
  await writeFile(join(dir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(dir, `${name}.md`), table);
  process.stdout.write(table);
} catch (error) {
  reportStartupError(error);
  process.exitCode = 1;
}
