import { mkdir, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { type InProcessConfig, inProcessConfig, loadConfig, readEnvironment } from "../src/config.js";
import { reportStartupError } from "../src/startupError.js";
import { loadDataset, loadToxicityDataset, type Split } from "./dataset.js";
import {
  type EvalResults,
  METHODS,
  type MethodName,
  renderEvalTable,
  renderReadmeTable,
  runEval,
} from "./evaluate.js";
import { renderToxicityTable, runToxicityEval, TOXICITY_TASK, type ToxicityResults } from "./toxicity.js";

/**
 * `npm run eval [-- --model PATH | --download] [--methods bot,grammar,…] [--split dev|holdout|all|both]
 * [--prompts DIR]… [--out DIR]`: scores each method on the labelled set, offline, and writes <DIR>/<model>.json
 * and .md (eval/results by default). `--download` fetches MODEL_URI with the bot's own download code and runs
 * every method on both splits; `--prompts` scores the bot method with another prompt folder beside the shipped one.
 * `--task toxicity` scores moderation's task on eval/toxicity.jsonl instead, and writes <model>.toxicity.json/.md.
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
      task: { type: "string" },
    },
  });
  const config = inProcessConfig(loadConfig(readEnvironment(), "console"), "npm run eval");
  const split = values.split ?? (values.download ? "both" : "dev");
  if (!["dev", "holdout", "all", "both"].includes(split))
    throw new Error("--split is dev, holdout, all or both");
  const modelPath = values.download ? await download(config) : (values.model ?? config.model.path);
  const splits: Split[] = split === "both" ? ["dev", "holdout"] : [split as Split];
  const dir = values.out ?? fileURLToPath(new URL("./results/", import.meta.url));
  if (values.task !== undefined) {
    if (values.task !== TOXICITY_TASK)
      throw new Error(`--task ${values.task}: the task with an eval set is toxicity`);
    if (modelPath === undefined)
      throw new Error("--task toxicity needs a model: --model PATH, MODEL_PATH or --download");
    await evaluateToxicity(modelPath, splits, config, dir);
  } else {
    await evaluateSentiment(modelPath, splits, values.methods ?? "", values.prompts ?? [], config, dir);
  }
} catch (error) {
  reportStartupError(error);
  process.exitCode = 1;
}

async function evaluateToxicity(
  modelPath: string,
  splits: readonly Split[],
  config: InProcessConfig,
  dir: string,
) {
  const devExamples = loadToxicityDataset("dev");
  const results: ToxicityResults[] = [];
  for (const one of splits) {
    results.push(
      await runToxicityEval({
        modelPath,
        tasksDir: config.tasksDir,
        examples: loadToxicityDataset(one),
        devExamples,
        split: one,
        threads: config.model.threads,
        log,
      }),
    );
  }
  const name = basename(modelPath).replace(/\.gguf$/i, "");
  await mkdir(dir, { recursive: true });
  const table = results.map(renderToxicityTable).join("\n");
  await writeFile(join(dir, `${name}.toxicity.json`), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(dir, `${name}.toxicity.md`), table);
  process.stdout.write(table);
}

async function evaluateSentiment(
  modelPath: string | undefined,
  splits: readonly Split[],
  methodList: string,
  prompts: readonly string[],
  config: InProcessConfig,
  dir: string,
) {
  const methods = methodList.split(",").map((m) => m.trim()) as MethodName[];
  const unknown = methods.filter((m) => !(METHODS as readonly string[]).includes(m));
  if (unknown.length > 0)
    throw new Error(`unknown method ${unknown.join(", ")}; the methods are ${METHODS.join(", ")}`);
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
        promptVariants: prompts,
        threads: config.model.threads,
        log,
      }),
    );
  }
  const name = modelPath === undefined ? "no-model" : basename(modelPath).replace(/\.gguf$/i, "");
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
}

/** MODEL_URI into MODELS_DIR with the bot's own download code: the same timeout, resume and progress. */
async function download(config: InProcessConfig): Promise<string> {
  const { everyPercent, resolveModel } = await import("../src/llm/inProcess/modelFile.js");
  return resolveModel({
    uri: config.model.uri,
    directory: config.model.directory,
    stallTimeoutMs: config.model.downloadTimeoutS * 1000,
    onProgress: everyPercent(10, (percent) => log(`downloading ${config.model.uri}: ${percent}%`)),
  });
}
