import { mkdir, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { basename, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { reportStartupError } from "../src/entry/startupError.js";
import {
  type Config,
  type InProcessConfig,
  inProcessConfig,
  loadConfig,
  readEnvironment,
} from "../src/platform/config.js";
import { type OpenBot, openBot } from "./botMethod.js";
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
 * With LLM_SERVER_URL set, the bot method runs on that server, as the bot would; the other model methods, which
 * are ways of reading a model file rather than the bot's, still need `--model` and run in this process.
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
  const config = loadConfig(readEnvironment(), "console");
  const split = values.split ?? (values.download ? "both" : "dev");
  if (!["dev", "holdout", "all", "both"].includes(split))
    throw new Error("--split is dev, holdout, all or both");
  const modelPath = values.download
    ? await download(inProcessConfig(config, "npm run eval -- --download"))
    : (values.model ?? (config.model.runtime === "in-process" ? config.model.path : undefined));
  const splits: Split[] = split === "both" ? ["dev", "holdout"] : [split as Split];
  const dir = values.out ?? fileURLToPath(new URL("./results/", import.meta.url));
  if (values.task !== undefined) {
    if (values.task !== TOXICITY_TASK)
      throw new Error(`--task ${values.task}: the task with an eval set is toxicity`);
    if (modelPath === undefined)
      throw new Error("--task toxicity needs a model: --model PATH, MODEL_PATH or --download");
    await evaluateToxicity(modelPath, splits, config.tasksDir, threadsFor(config), dir);
  } else {
    await evaluateSentiment(modelPath, splits, values.methods ?? "", values.prompts ?? [], config, dir);
  }
} catch (error) {
  reportStartupError(error);
  process.exitCode = 1;
}

/** The in-process methods' threads: LLM_THREADS, or with the model on a server (which ignores it) every core. */
function threadsFor(config: Config): number {
  return config.model.runtime === "in-process" ? config.model.threads : availableParallelism();
}

async function evaluateToxicity(
  modelPath: string,
  splits: readonly Split[],
  tasksDir: string,
  threads: number,
  dir: string,
) {
  const devExamples = loadToxicityDataset("dev");
  const results: ToxicityResults[] = [];
  for (const one of splits) {
    results.push(
      await runToxicityEval({
        modelPath,
        tasksDir,
        examples: loadToxicityDataset(one),
        devExamples,
        split: one,
        threads,
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
  config: Config,
  dir: string,
) {
  const threads = threadsFor(config);
  // With a server, the bot method runs there, as the bot would; otherwise on the model file, in this process.
  const bot: OpenBot | undefined = config.model.runtime === "server" ? openBot(config.model) : undefined;
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
        ...(bot ? { openBot: bot } : {}),
        methods,
        examples: loadDataset(one),
        split: one,
        devExamples,
        neutralThreshold: config.sentiment.neutralThreshold,
        promptVariants: prompts,
        threads,
        log,
      }),
    );
  }
  const name = (results[0]?.model ?? "no-model").replace(/\.gguf$/i, "").replace(/[^\w.-]+/g, "_");
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
