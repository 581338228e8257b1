import { readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { GgufFileType, GgufInsights, getLlama, type Llama, readGgufFileInfo } from "node-llama-cpp";
import { errorMessage, ModelLoadError } from "../../platform/errors.js";
import { SENTIMENT_LABELS } from "../../platform/sentimentLabels.js";
import { inspectLabelTokens } from "../labels.js";

/** What `npm run model -- list` shows of one GGUF file, read from its header and its vocabulary. */
export interface ModelFileInfo {
  readonly file: string;
  readonly sizeBytes: number;
  readonly architecture: string;
  /** The file type, such as MOSTLY_Q8_0. */
  readonly quantisation: string;
  readonly parameters: number | undefined;
  /** The context length the model was trained for. */
  readonly contextLength: number | undefined;
  /**
   * Whether positive, negative and neutral start with three different tokens: then one forward pass reads the
   * label (the fast path); otherwise the bot falls back to constrained decoding.
   */
  readonly labelsUnique: boolean;
}

/** The .gguf files in a folder, by name; an absent folder has none. */
export async function ggufFilesIn(directory: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return [];
  }
  return names
    .filter((name) => name.endsWith(".gguf"))
    .sort()
    .map((name) => join(directory, name));
}

/**
 * Reads each file's header and vocabulary on a CPU backend of its own, freed afterwards: `npm run model` reaches
 * node-llama-cpp only through this folder.
 */
export async function inspectModelFiles(files: readonly string[]): Promise<ModelFileInfo[]> {
  const llama = await getLlama({ gpu: false, build: "never" });
  try {
    const found: ModelFileInfo[] = [];
    for (const file of files) found.push(await inspectModelFile(llama, file));
    return found;
  } finally {
    await llama.dispose();
  }
}

/** Reads a file's header and vocabulary (no weights are loaded). */
async function inspectModelFile(llama: Llama, file: string): Promise<ModelFileInfo> {
  let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    info = await readGgufFileInfo(file, { readTensorInfo: true, logWarnings: false });
  } catch (error) {
    throw new ModelLoadError(file, `${basename(file)} is not a readable GGUF file (${errorMessage(error)})`, {
      cause: error,
    });
  }
  const fileType = info.metadata.general?.file_type;
  const insights = await GgufInsights.from(info, llama);
  const vocabulary = await llama.loadModel({ modelPath: file, vocabOnly: true });
  try {
    const labels = inspectLabelTokens((text) => vocabulary.tokenize(text, false), SENTIMENT_LABELS);
    return {
      file,
      sizeBytes: (await stat(file)).size,
      architecture: String(info.metadata.general?.architecture ?? "unknown"),
      quantisation: fileType === undefined ? "unknown" : (GgufFileType[fileType] ?? String(fileType)),
      parameters: insights.totalParameters || undefined,
      contextLength: insights.trainContextSize,
      labelsUnique: labels.firstTokensUnique,
    };
  } finally {
    await vocabulary.dispose();
  }
}
