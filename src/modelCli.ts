import { basename } from "node:path";
import type { Config } from "./config.js";
import { MoodbotError } from "./errors.js";
import { createLogger } from "./logger.js";
import { loadConfigOrExit, reportStartupError } from "./startupError.js";

/*
 * `npm run model -- <command>`: the model files, managed with node-llama-cpp's own file insights and the bot's
 * own download code (the same timeout and resume as npm start).
 *   pull [uri]      download MODEL_URI (or the given hf: URI or URL) into MODELS_DIR, with progress
 *   list            the .gguf files in MODELS_DIR: size, quantisation, parameters, context, label tokens
 *   verify [file]   load MODEL_PATH (or the file, or the downloaded MODEL_URI) and classify one message
 */

const USAGE = `Usage: npm run model -- <command>
  pull [uri]      download MODEL_URI, or the given hf: URI or https URL, into MODELS_DIR
  list            the .gguf files in MODELS_DIR, with size, quantisation, context length and label tokens
  verify [file]   check that a model loads and reads the three sentiment labels in one pass`;

/** A command line that names no known command. */
class UsageError extends MoodbotError {
  override readonly name = "UsageError";
}

async function main(): Promise<void> {
  const config = loadConfigOrExit("model");
  const [command, argument] = process.argv.slice(2);
  try {
    if (command === "pull") await pull(config, argument);
    else if (command === "list") await list(config);
    else if (command === "verify") process.exitCode = (await verify(config, argument)) ? 0 : 1;
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

async function pull(config: Config, uri = config.model.uri): Promise<void> {
  console.log(`model ready: ${await downloaded(config, uri)}`);
}

/** The local file of a model URI, downloaded into MODELS_DIR first when it is not there yet. */
async function downloaded(config: Config, uri = config.model.uri): Promise<string> {
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

async function list(config: Config): Promise<void> {
  const [{ ggufFilesIn, inspectModelFile }, { getLlama }] = await Promise.all([
    import("./llm/inProcess/modelInfo.js"),
    import("node-llama-cpp"),
  ]);
  const files = await ggufFilesIn(config.model.directory);
  if (files.length === 0) {
    console.log(
      `No .gguf files in ${config.model.directory}. Run npm run model -- pull to download the default model.`,
    );
    return;
  }
  const llama = await getLlama({ gpu: false, build: "never" });
  try {
    const rows = [["file", "size", "quantisation", "parameters", "context", "sentiment labels"]];
    for (const file of files) {
      const info = await inspectModelFile(llama, file);
      rows.push([
        basename(file),
        megabytes(info.sizeBytes),
        info.quantisation,
        info.parameters === undefined ? "?" : `${(info.parameters / 1e9).toFixed(2)}B`,
        String(info.contextLength ?? "?"),
        info.labelsUnique ? "one pass (unique first tokens)" : "constrained decoding (shared first token)",
      ]);
    }
    const widths =
      rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
    for (const row of rows)
      console.log(
        row
          .map((cell, column) => cell.padEnd(widths[column] ?? 0))
          .join("  ")
          .trimEnd(),
      );
  } finally {
    await llama.dispose();
  }
}

/** Loads the model as the bot does and classifies one message; false when the labels need the slow path. */
async function verify(config: Config, file: string | undefined): Promise<boolean> {
  const [{ loadModel }, { loadPrompts }, { getLlama }, { inspectModelFile }] = await Promise.all([
    import("./llm/inProcess/model.js"),
    import("./prompts.js"),
    import("node-llama-cpp"),
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
  const llama = await getLlama({ gpu: false, build: "never" });
  try {
    const info = await inspectModelFile(llama, modelFile);
    if (info.labelsUnique) {
      console.log(
        "positive, negative and neutral start with three different tokens: one forward pass per message.",
      );
      return true;
    }
    console.log(
      "positive, negative and neutral do not start with three different tokens in this model's vocabulary: the bot falls back to constrained decoding, several passes per message. Choose another model for speed.",
    );
    return false;
  } finally {
    await llama.dispose();
  }
}

const megabytes = (bytes: number) => `${Math.round(bytes / 1e6)} MB`;

await main();
