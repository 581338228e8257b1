import { basename } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { loadConfigOrExit, reportStartupError } from "./entry/startupError.js";
import type { Llm } from "./llm/llm.js";
import type { LabelVotes } from "./llm/server/serverLabels.js";
import {
  type Config,
  type InProcessConfig,
  inProcessConfig,
  type ServerModelConfig,
} from "./platform/config.js";
import { MoodbotError } from "./platform/errors.js";
import { createLogger } from "./platform/logger.js";
import { SENTIMENT_LABELS, type SentimentLabel } from "./platform/sentimentLabels.js";

/*
 * `npm run model -- <command>`: the model files, managed with node-llama-cpp's own file insights and the bot's
 * own download code (the same timeout and resume as npm start), or, with LLM_SERVER_URL set, the model server.
 *   pull [uri]      download MODEL_URI (or the given hf: URI or URL) into MODELS_DIR, with progress
 *   list            the .gguf files in MODELS_DIR: size, quantisation, parameters, context, label tokens
 *   verify [file]   load MODEL_PATH (or the file, or the downloaded MODEL_URI) and classify one message; with
 *                   LLM_SERVER_URL, reach the server and classify one message there
 * node-llama-cpp is reached only through src/llm/inProcess/, as everywhere in the bot.
 */

const USAGE = `Usage: npm run model -- <command>
  pull [uri]      download MODEL_URI, or the given hf: URI or https URL, into MODELS_DIR
  list            the .gguf files in MODELS_DIR, with size, quantisation, context length and label tokens
  verify [file]   check that a model loads (or, with LLM_SERVER_URL, that the server answers) and reads the three
                  sentiment labels in one pass`;

/** How often `verify` looks whether the server has become usable, and for how many looks at most. */
const READY_POLL_MS = 250;
const READY_POLLS = 120;
/** Problems that waiting can end: the first contact not made yet, a server not up yet or restarting. */
const WORTH_WAITING: ReadonlySet<string> = new Set(["starting", "unreachable", "timeout"]);

/** A command line that names no known command. */
class UsageError extends MoodbotError {
  override readonly name = "UsageError";
}

async function main(): Promise<void> {
  const config = loadConfigOrExit("model");
  const [command, argument] = process.argv.slice(2);
  try {
    const files = (tool: string) => inProcessConfig(config, `npm run model -- ${tool}`);
    if (command === "pull") await pull(files("pull"), argument);
    else if (command === "list") await list(files("list"));
    else if (command === "verify")
      process.exitCode = (await (config.model.runtime === "server"
        ? verifyServer(config, config.model)
        : verify(inProcessConfig(config, "npm run model -- verify"), argument)))
        ? 0
        : 1;
    else
      throw new UsageError(
        `${command === undefined ? "no command given" : `unknown command ${command}`}.\n${USAGE}`,
      );
  } catch (error) {
    reportStartupError(error);
    process.exitCode = 1;
  }
  // A download given up on can leave its request open; the command is done either way.
  process.exit();
}

async function pull(config: InProcessConfig, uri = config.model.uri): Promise<void> {
  console.log(`model ready: ${await downloaded(config, uri)}`);
}

/** The local file of a model URI, downloaded into MODELS_DIR first when it is not there yet. */
async function downloaded(config: InProcessConfig, uri = config.model.uri): Promise<string> {
  const { everyPercent, resolveModel } = await import("./llm/inProcess/modelFile.js");
  return resolveModel({
    uri,
    directory: config.model.directory,
    stallTimeoutMs: config.model.downloadTimeoutS * 1000,
    onProgress: everyPercent(5, (percent, totalBytes) =>
      console.log(`downloading ${uri}: ${percent}% of ${megabytes(totalBytes)}`),
    ),
  });
}

async function list(config: InProcessConfig): Promise<void> {
  const { ggufFilesIn, inspectModelFiles } = await import("./llm/inProcess/modelInfo.js");
  const files = await ggufFilesIn(config.model.directory);
  if (files.length === 0) {
    console.log(
      `No .gguf files in ${config.model.directory}. Run npm run model -- pull to download the default model.`,
    );
    return;
  }
  const rows = [["file", "size", "quantisation", "parameters", "context", "sentiment labels"]];
  for (const info of await inspectModelFiles(files)) {
    rows.push([
      basename(info.file),
      megabytes(info.sizeBytes),
      info.quantisation,
      info.parameters === undefined ? "?" : `${(info.parameters / 1e9).toFixed(2)}B`,
      String(info.contextLength ?? "?"),
      info.labelsUnique ? "one pass (unique first tokens)" : "constrained decoding (shared first token)",
    ]);
  }
  const widths = rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
  for (const row of rows)
    console.log(
      row
        .map((cell, column) => cell.padEnd(widths[column] ?? 0))
        .join("  ")
        .trimEnd(),
    );
}

/** Loads the model as the bot does and classifies one message; false when the labels need the slow path. */
async function verify(config: InProcessConfig, file: string | undefined): Promise<boolean> {
  const [{ loadModel }, { loadPrompts }, { inspectModelFiles }] = await Promise.all([
    import("./llm/inProcess/model.js"),
    import("./prompts/prompts.js"),
    import("./llm/inProcess/modelInfo.js"),
  ]);
  const logger = createLogger({ level: "silent" });
  const modelFile = file ?? config.model.path ?? (await downloaded(config));
  const llm = await loadModel({
    ...config.model,
    path: modelFile,
    chatSequences: 1,
    sentimentSequences: 1,
    chatSpeedFloor: config.chat.speedFloor,
    sentiment: config.sentiment,
    prompts: loadPrompts(config.promptsDir),
    logger,
  });
  try {
    const result = await llm.classifySentiment("verifying that the model loads", { priority: "interactive" });
    console.log(
      `${llm.modelName} loads on ${llm.backend} and classified a message as ${result.label} (${result.method}, ${result.evaluatedTokens} tokens).`,
    );
  } finally {
    await llm.close();
  }
  const [info] = await inspectModelFiles([modelFile]);
  if (info?.labelsUnique) {
    console.log(
      "positive, negative and neutral start with three different tokens: one forward pass per message.",
    );
    return true;
  }
  console.log(
    "positive, negative and neutral do not start with three different tokens in this model's vocabulary: the bot falls back to constrained decoding, several passes per message. Choose another model for speed.",
  );
  return false;
}

/**
 * Reaches the server as the bot does (its kind, its model, the label tokens through its tokeniser) and classifies
 * one message there; false when it cannot be used, with the reason, or when it reads labels only approximately.
 */
async function verifyServer(config: Config, server: ServerModelConfig): Promise<boolean> {
  const [{ createServerLlm }, { loadPrompts }, { loadTasks }] = await Promise.all([
    import("./llm/server/index.js"),
    import("./prompts/prompts.js"),
    import("./tasks/tasks.js"),
  ]);
  const { runtime: _runtime, ...settings } = server;
  // The server runtime itself, not the result caches the bot puts over it: a verification reads the server.
  const llm = createServerLlm({
    ...settings,
    logger: createLogger({ level: "silent" }),
    prompts: loadPrompts(config.promptsDir),
    tasks: loadTasks(config.tasksDir),
    sentiment: { queueSize: config.sentiment.queueSize, maxWaitMs: config.sentiment.maxWaitMs },
  });
  await llm.start();
  try {
    const cause = await notReadyCause(llm);
    if (cause !== undefined) {
      console.log(`The model server cannot be used: ${cause}`);
      return false;
    }
    const { kind, model, method } = llm.runtime;
    const result = await llm.classifySentiment("verifying that the server answers", {
      priority: "interactive",
    });
    console.log(
      `The ${kind} server serves ${model} (${llm.contextSize} tokens per conversation) and classified a message as ${result.label} (${result.method}, confidence ${result.confidence.toFixed(2)}).`,
    );
    const votes = llm.sentimentVotes;
    if (votes) console.log(`Label tokens: ${describeVotes(votes)}.`);
    console.log(`Probabilities: ${describeProbabilities(result.probabilities)}.`);
    if (method === "logits") return true;
    console.log(
      "Its labels are read from a top-k list of log-probabilities: approximate, not exact. llama-server and vLLM (with logprob_token_ids) give exact ones.",
    );
    return false;
  } finally {
    await llm.close();
  }
}

/** Each label's vote tokens: the server's token id and its text, or the text alone where the server has no tokeniser. */
function describeVotes(votes: LabelVotes<SentimentLabel>): string {
  return votes.labels
    .map((label) => {
      const tokens = votes.byLabel[label].map((index) => {
        const token = votes.voteTokens[index];
        if (!token) return "?";
        return token.id === undefined
          ? JSON.stringify(token.text)
          : `${token.id} ${JSON.stringify(token.text)}`;
      });
      return `${label} ${tokens.join(", ")}`;
    })
    .join("; ");
}

const describeProbabilities = (probabilities: Readonly<Record<SentimentLabel, number>>): string =>
  SENTIMENT_LABELS.map((label) => `${label} ${probabilities[label].toFixed(3)}`).join(", ");

/** Waits, a bounded number of times, for the server's first good contact; the last cause when none came. */
async function notReadyCause(llm: Llm): Promise<string | undefined> {
  for (let poll = 0; poll < READY_POLLS; poll++) {
    const { readiness } = llm;
    if (readiness.ready) break;
    // A server still starting may come up; a refused key or a model whose labels cannot be read will not.
    if (readiness.problem !== undefined && !WORTH_WAITING.has(readiness.problem)) break;
    await delay(READY_POLL_MS);
  }
  const { readiness } = llm;
  return readiness.ready ? undefined : readiness.cause;
}

const megabytes = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;

await main();
