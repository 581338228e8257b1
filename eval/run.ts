import { mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type Config, loadConfig, readEnvironment } from "../src/config.js";
import { reportStartupError } from "../src/startupError.js";
import { loadDataset, type Split } from "./dataset.js";
import {
  type EvalResults,
  METHODS,
  type MethodName,
  renderEvalTable,
  renderReadmeTable,
  runEval,
} from "./evaluate.js";

/**
 * `npm run eval [-- --model PATH | --download] [--methods bot,grammar,…] [--split dev|holdout|all|both]
 * [--prompts DIR]… [--out DIR]`: scores each method on the labelled set, offline, and writes <DIR>/<model>.json
 * and .md (eval/results by default). `--download` fetches MODEL_URI with the bot's own download code and runs
 * every method on both splits; `--prompts` scores the bot method with another prompt folder beside the shipped one.
 */
const log = (line: string) => process.stderr.write(`${line}\n`);

try {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      download: { type: "boolean", default: false },
      methods: { type: "string", default: METHODS.join(",") },
      split: { type: "string" },
      prompts: { type: "string", multiple: true, default: [] },
      out: { type: "string" },
    },
  });
  const config = loadConfig(readEnvironment(), "console");
  const methods = (values.methods ?? "").split(",").map((m) => m.trim()) as MethodName[];
  const unknown = methods.filter((m) => !(METHODS as readonly string[]).includes(m));
  if (unknown.length > 0)
    throw new Error(`unknown method ${unknown.join(", ")}; the methods are ${METHODS.join(", ")}`);
  const split = values.split ?? (values.download ? "both" : "dev");
  if (!["dev", "holdout", "all", "both"].includes(split))
    throw new Error("--split is dev, holdout, all or both");
  const modelPath = values.download ? await download(config) : (values.model ?? config.model.path);
  const splits: Split[] = split === "both" ? ["dev", "holdout"] : [split as Split];
  const devExamples = loadDataset("dev");
  const results: EvalResults[] = [];
  for (const one of splits) {
    log(`split ${one}:`);
    results.push(
      await runEval({
        modelPath,
        methods,
        examples: loadDataset(one),
        split: one,
        devExamples,
        neutralThreshold: config.sentiment.neutralThreshold,
        promptVariants: values.prompts ?? [],
        threads: config.model.threads,
        log,
      }),
    );
  }
  const name = modelPath === undefined ? "no-model" : basename(modelPath).replace(/\.gguf$/i, "");
  const dir = values.out ?? fileURLToPath(new URL("./results/", import.meta.url));
  await mkdir(dir, { recursive: true });
  const tables = results.map(renderEvalTable);
  if (results.length > 1) tables.push(renderReadmeTable(results));
  const table = tables.join("\n");
  await writeFile(
    join(dir, `${name}.json`),
    `${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`,
  );
  await writeFile(join(dir, `${name}.md`), table);
  process.stdout.write(table);
} catch (error) {
  reportStartupError(error);
  process.exitCode = 1;
}

/** MODEL_URI into MODELS_DIR with the bot's own download code: the same timeout, resume and progress. */
async function download(config: Config): Promise<string> {
  const { everyPercent, resolveModel } = await import("../src/llm/modelFile.js");
  return resolveModel({
    uri: config.model.uri,
    directory: config.model.directory,
    stallTimeoutMs: config.model.downloadTimeoutS * 1000,
    onProgress: everyPercent(10, (percent) => log(`downloading ${config.model.uri}: ${percent}%`)),
  });
}
