import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TinyModelOptions, writeTinyQwenGguf } from "./gguf.js";

/** Writes a tiny test model into a fresh temp folder; a few hundred kilobytes, written in milliseconds. */
export async function tinyModel(options: TinyModelOptions = {}): Promise<string> {
  const dir = join(tmpdir(), "moodbot-test-models");
  await mkdir(dir, { recursive: true });
  const name = [
    "tiny",
    options.favouredToken === undefined
      ? "random"
      : `favours-${Buffer.from(options.favouredToken).toString("hex")}`,
    options.collidingLabels ? "colliding" : "distinct",
    String(options.seed ?? 7),
    String(options.vocabularySize ?? "minimal"),
    String(process.pid),
  ].join("-");
  return writeTinyQwenGguf(join(dir, `${name}.gguf`), options);
}
