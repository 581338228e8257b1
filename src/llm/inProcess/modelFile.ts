import { resolveModelFile } from "node-llama-cpp";
import { errorMessage, ModelLoadError } from "../../platform/errors.js";

export interface ModelDownload {
  /** An `hf:` URI or an http(s) URL of a .gguf file. */
  readonly uri: string;
  /** Where downloaded models are kept, and found on later starts. */
  readonly directory: string;
  /** The download gives up after this long without progress (nothing received, or no answer at all). */
  readonly stallTimeoutMs: number;
  /** Called as bytes arrive. (node-llama-cpp's own progress bar is never used: it holds the console.) */
  readonly onProgress?: (progress: { readonly downloadedBytes: number; readonly totalBytes: number }) => void;
}

/**
 * The local path of a model URI: the file in `directory` when an earlier start finished downloading it, else a
 * download. Every model download goes through here, so each gets the same limits. A download that stalls gives
 * up with a ModelLoadError that says how to fetch the file by hand. A download writes to a partial file
 * (`.ipull`) and takes the model's own name only once finished, so a partial file is never loaded. The partial
 * file is kept, and the next start continues from it (in whole 5 MB chunks).
 */
export async function resolveModel(download: ModelDownload): Promise<string> {
  const abort = new AbortController();
  let watchdog: NodeJS.Timeout | undefined;
  const stillWaiting = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(
      () => abort.abort(new DownloadStalledError(download.stallTimeoutMs)),
      download.stallTimeoutMs,
    );
  };
  stillWaiting();
  // node-llama-cpp asks the hub about the file before its download watches the signal: a hub that never answers
  // is only left behind by racing it. Its outcome becomes a value, so nothing is left to reject unheard.
  const outcome = resolveModelFile(download.uri, {
    directory: download.directory,
    cli: false,
    onProgress: ({ downloadedSize, totalSize }) => {
      stillWaiting();
      download.onProgress?.({ downloadedBytes: downloadedSize, totalBytes: totalSize });
    },
    deleteTempFileOnCancel: false,
    signal: abort.signal,
  }).then(
    (path) => ({ path }),
    (error: unknown) => ({ error }),
  );
  const stalled = new Promise<{ error: unknown }>((resolve) => {
    abort.signal.addEventListener("abort", () => resolve({ error: abort.signal.reason }), { once: true });
  });
  try {
    const settled = await Promise.race([outcome, stalled]);
    // A cancelled download can return as if it had finished, but the stall settles the race first.
    if ("error" in settled) throw settled.error;
    return settled.path;
  } catch (error) {
    const cause = abort.signal.aborted ? abort.signal.reason : error;
    throw new ModelLoadError(download.uri, cannotDownload(download, cause), { cause });
  } finally {
    clearTimeout(watchdog);
  }
}

/**
 * A progress callback for `resolveModel` that reports once per `stepPercent` of the file, and when it is whole:
 * what a terminal or a log wants of a download of hundreds of megabytes.
 */
export function everyPercent(
  stepPercent: number,
  report: (percent: number, totalBytes: number) => void,
): NonNullable<ModelDownload["onProgress"]> {
  let lastPercent = -stepPercent;
  return ({ downloadedBytes, totalBytes }) => {
    const percent = Math.floor((100 * downloadedBytes) / Math.max(1, totalBytes));
    if (percent < lastPercent + stepPercent && downloadedBytes < totalBytes) return;
    lastPercent = percent;
    report(percent, totalBytes);
  };
}

class DownloadStalledError extends Error {
  override readonly name = "DownloadStalledError";
  constructor(readonly stallTimeoutMs: number) {
    super(`no progress for ${Math.round(stallTimeoutMs / 1000)} s`);
  }
}

/** One paragraph: what failed, and how to get the model without the bot's help. */
function cannotDownload(download: ModelDownload, cause: unknown): string {
  const url = download.uri.startsWith("hf:")
    ? `https://huggingface.co/${download.uri.slice(3).replace(/^([^/]+\/[^/]+)\//, "$1/resolve/main/")}`
    : download.uri;
  const stalled = cause instanceof DownloadStalledError;
  return [
    `Could not download the model ${download.uri} into ${download.directory} (${errorMessage(cause)}).`,
    stalled
      ? "The model hub could not be reached, or stopped sending; MODEL_DOWNLOAD_TIMEOUT_S sets how long to wait."
      : "Check the network and MODEL_URI.",
    `What arrived is kept, and the next start continues from it. To fetch the file by hand, download ${url}`,
    "(for example with curl -L -O, or in a browser) and set MODEL_PATH to the saved .gguf file.",
  ].join(" ");
}
