import { mkdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBpeVocabulary, TINY_VOCABULARY_WORDS, writeQwenGguf } from "./gguf.js";

/*
 * A model whose reply lasts seconds on one thread, for tests that must act while a reply is still streaming (a
 * server killed mid-reply, a shutdown mid-reply). The tiny model writes 1,600 tokens in half a second; this one is
 * deep (24 layers, 256 wide) with the tiny vocabulary, so each token costs ~24 M multiply-adds and one thread writes
 * ~80-150 tokens a second, while a prompt (evaluated in batches) stays cheap: a burst of classifications is still
 * quick. It favours " lorem" after any input, so a reply runs on to its limit.
 *
 * Why not the bench's 0.5B-shape long-reply model: 675 MB, slower to load, and its Q8_0 weights crash llama-server
 * (de3ff81) on a CPU with AMX (a segfault in ggml_backend_amx_mul_mat at warm-up, unless --no-repack). This model
 * is f32 (95 MB, written in under a second), which takes no AMX path.
 */

export const LONG_REPLY_SHAPE = { layers: 24, hidden: 256, heads: 4, kvHeads: 2, ffn: 1024 } as const;

export interface LongReplyModel {
  readonly path: string;
  /** Deletes the file (95 MB): call it in afterAll. */
  remove(): Promise<void>;
}

export async function longReplyModel(): Promise<LongReplyModel> {
  const dir = join(tmpdir(), "moodbot-test-models");
  await mkdir(dir, { recursive: true });
  const path = join(
    dir,
    `long-reply-${LONG_REPLY_SHAPE.layers}x${LONG_REPLY_SHAPE.hidden}-${process.pid}.gguf`,
  );
  await writeQwenGguf({
    path,
    name: "moodbot-long-reply-qwen2",
    ...LONG_REPLY_SHAPE,
    vocabulary: buildBpeVocabulary([...TINY_VOCABULARY_WORDS]),
    seed: 7,
    favouredToken: " lorem",
  });
  return { path, remove: () => rm(path, { force: true }) };
}
