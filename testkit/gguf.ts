import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  createRandom,
  GGUF_ALIGNMENT,
  type GgmlType,
  type MetadataValue,
  type TensorSpec,
  writeGguf,
} from "./ggufContainer.js";

export { float32ToFloat16Bits, type GgmlType } from "./ggufContainer.js";

/**
 * A GGUF v3 writer for test and benchmark models: random weights in the real Qwen2 layout, a byte-level BPE
 * vocabulary and the Qwen2.5 chat template, so that node-llama-cpp loads them through the same path as the
 * real default model. The text they produce is nonsense; the timings and the code paths are real.
 */

export const QWEN_CHAT_TEMPLATE = readFileSync(
  join(dirname(fileURLToPath(import.meta.url)), "fixtures", "qwen2.5-instruct.chat-template.jinja"),
  "utf8",
);

// ---------------------------------------------------------------------------------------------------------------
// Byte-level BPE vocabulary

/** GPT-2's reversible byte → printable character table, which Qwen's byte-level BPE also uses. */
export function byteToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + extra++);
  }
  return table;
}

export interface BpeVocabulary {
  readonly tokens: readonly string[];
  /** llama.cpp token types: 1 normal, 3 control. */
  readonly types: readonly number[];
  readonly merges: readonly string[];
}

export const QWEN_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] as const;

/**
 * Builds a small byte-level BPE vocabulary: the 256 byte tokens, then, for each word, a left-to-right chain of
 * merges that makes the whole word one token. Words listed first get the lowest merge ranks, so they always
 * tokenise whole. Words are given as raw text; a leading space belongs to the word, as Qwen's pre-tokeniser
 * splits it.
 */
export function buildBpeVocabulary(words: readonly string[]): BpeVocabulary {
  const bytes = byteToUnicode();
  const tokens: string[] = [...bytes];
  const known = new Set(tokens);
  const merges: string[] = [];
  for (const word of words) {
    const symbols = [...Buffer.from(word, "utf8")].map((b) => bytes[b] ?? "");
    let left = symbols[0] ?? "";
    for (const right of symbols.slice(1)) {
      const merged = left + right;
      if (!known.has(merged)) {
        merges.push(`${left} ${right}`);
        tokens.push(merged);
        known.add(merged);
      }
      left = merged;
    }
  }
  const types = tokens.map(() => 1);
  for (const special of QWEN_SPECIAL_TOKENS) {
    tokens.push(special);
    types.push(3);
  }
  return { tokens, types, merges };
}

/** The words of the tiny test vocabulary. The sentiment labels come first so they are always single tokens. */
export const TINY_VOCABULARY_WORDS = [
  "positive",
  "negative",
  "neutral",
  "Positive",
  "Negative",
  "Neutral",
  "system",
  "user",
  "assistant",
  " the",
  " a",
  " is",
  " and",
  " you",
  " I",
  " to",
  " of",
  " it",
  " this",
  " that",
  " love",
  " hate",
  " good",
  " bad",
  " great",
  " sad",
  " happy",
  " message",
  " sentiment",
  " lorem",
  " ipsum",
  " @everyone",
] as const;

// ---------------------------------------------------------------------------------------------------------------
// Model

export interface QwenModelOptions {
  readonly path: string;
  readonly name?: string;
  readonly layers: number;
  readonly hidden: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly ffn: number;
  readonly contextLength?: number;
  readonly vocabulary: BpeVocabulary;
  /** Pads the vocabulary with unused tokens up to this size, as real models reserve ids. */
  readonly vocabularySize?: number;
  readonly weightType?: GgmlType;
  readonly seed?: number;
  /**
   * Makes the model prefer this token after any input: an untied output matrix reads a constant that every
   * token embedding carries. It turns random weights into a model whose behaviour a test can predict.
   */
  readonly favouredToken?: string;
  readonly chatTemplate?: string;
}

const EMBEDDING_MARKER = 1;
const FAVOURED_LOGIT_WEIGHT = 12;
const WEIGHT_SCALE = 0.05;

function qwenTensors(options: QwenModelOptions, vocabularySize: number, favouredId: number | undefined) {
  const { hidden, ffn, layers, heads, kvHeads } = options;
  const weightType = options.weightType ?? "f32";
  const kvDim = (hidden / heads) * kvHeads;
  const random = createRandom(options.seed ?? 1);
  const noise = (out: Float32Array, scale = WEIGHT_SCALE) => {
    for (let i = 0; i < out.length; i++) out[i] = (random() * 2 - 1) * scale;
  };
  const ones = (_row: number, out: Float32Array) => out.fill(1);
  const randomRows = (_row: number, out: Float32Array) => noise(out);
  const tensors: TensorSpec[] = [
    {
      name: "token_embd.weight",
      dims: [hidden, vocabularySize],
      type: weightType,
      fillRow: (_row, out) => {
        noise(out);
        // A constant in dimension 0 that the favoured output row reads; harmless when nothing is favoured.
        if (favouredId !== undefined) out[0] = EMBEDDING_MARKER;
      },
    },
  ];
  for (let layer = 0; layer < layers; layer++) {
    const block = `blk.${layer}`;
    tensors.push(
      { name: `${block}.attn_norm.weight`, dims: [hidden], type: "f32", fillRow: ones },
      { name: `${block}.attn_q.weight`, dims: [hidden, hidden], type: weightType, fillRow: randomRows },
      { name: `${block}.attn_q.bias`, dims: [hidden], type: "f32", fillRow: randomRows },
      { name: `${block}.attn_k.weight`, dims: [hidden, kvDim], type: weightType, fillRow: randomRows },
      { name: `${block}.attn_k.bias`, dims: [kvDim], type: "f32", fillRow: randomRows },
      { name: `${block}.attn_v.weight`, dims: [hidden, kvDim], type: weightType, fillRow: randomRows },
      { name: `${block}.attn_v.bias`, dims: [kvDim], type: "f32", fillRow: randomRows },
      { name: `${block}.attn_output.weight`, dims: [hidden, hidden], type: weightType, fillRow: randomRows },
      { name: `${block}.ffn_norm.weight`, dims: [hidden], type: "f32", fillRow: ones },
      { name: `${block}.ffn_gate.weight`, dims: [hidden, ffn], type: weightType, fillRow: randomRows },
      { name: `${block}.ffn_up.weight`, dims: [hidden, ffn], type: weightType, fillRow: randomRows },
      { name: `${block}.ffn_down.weight`, dims: [ffn, hidden], type: weightType, fillRow: randomRows },
    );
  }
  tensors.push({ name: "output_norm.weight", dims: [hidden], type: "f32", fillRow: ones });
  if (favouredId !== undefined) {
    tensors.push({
      name: "output.weight",
      dims: [hidden, vocabularySize],
      type: weightType,
      fillRow: (row, out) => {
        noise(out);
        out[0] = row === favouredId ? FAVOURED_LOGIT_WEIGHT : 0;
      },
    });
  }
  return tensors;
}

/** Writes a Qwen2-architecture GGUF file (tied embeddings unless a token is favoured). */
export async function writeQwenGguf(options: QwenModelOptions): Promise<string> {
  const vocabulary = padVocabulary(options.vocabulary, options.vocabularySize);
  let favouredId: number | undefined;
  if (options.favouredToken !== undefined) {
    const target = encodeTokenText(options.favouredToken);
    favouredId = vocabulary.tokens.indexOf(target);
    if (favouredId < 0)
      throw new Error(`favoured token ${JSON.stringify(options.favouredToken)} is not in the vocabulary`);
  }
  const metadata = qwenMetadata(options, vocabulary);
  const tensors = qwenTensors(options, vocabulary.tokens.length, favouredId);
  await writeGguf(options.path, metadata, tensors);
  return options.path;
}

/** The shape of a Qwen2 model, as its metadata states it. */
export type QwenShape = Pick<
  QwenModelOptions,
  "name" | "layers" | "hidden" | "heads" | "kvHeads" | "ffn" | "contextLength" | "weightType" | "chatTemplate"
>;

/** The metadata llama.cpp reads for a Qwen2 model with this byte-level BPE vocabulary and the Qwen chat template. */
export function qwenMetadata(options: QwenShape, vocabulary: BpeVocabulary): Array<[string, MetadataValue]> {
  const eos = vocabulary.tokens.indexOf("<|im_end|>");
  const endOfText = vocabulary.tokens.indexOf("<|endoftext|>");
  return [
    ["general.architecture", "qwen2"],
    ["general.name", options.name ?? "moodbot-test-qwen2"],
    ["general.alignment", GGUF_ALIGNMENT],
    ["general.file_type", (options.weightType ?? "f32") === "q8_0" ? 7 : 0],
    ["qwen2.block_count", options.layers],
    ["qwen2.context_length", options.contextLength ?? 32768],
    ["qwen2.embedding_length", options.hidden],
    ["qwen2.feed_forward_length", options.ffn],
    ["qwen2.attention.head_count", options.heads],
    ["qwen2.attention.head_count_kv", options.kvHeads],
    ["qwen2.rope.freq_base", { float: 1_000_000 }],
    ["qwen2.attention.layer_norm_rms_epsilon", { float: 1e-6 }],
    ["tokenizer.ggml.model", "gpt2"],
    ["tokenizer.ggml.pre", "qwen2"],
    ["tokenizer.ggml.tokens", [...vocabulary.tokens]],
    ["tokenizer.ggml.token_type", { int32s: [...vocabulary.types] }],
    ["tokenizer.ggml.merges", [...vocabulary.merges]],
    ["tokenizer.ggml.eos_token_id", eos],
    ["tokenizer.ggml.padding_token_id", endOfText],
    ["tokenizer.ggml.bos_token_id", endOfText],
    ["tokenizer.ggml.add_bos_token", false],
    ["tokenizer.chat_template", options.chatTemplate ?? QWEN_CHAT_TEMPLATE],
  ];
}

/** A word as its token is spelled in the vocabulary: byte-level BPE characters, or a special token as is. */
export function encodeTokenText(text: string): string {
  if ((QWEN_SPECIAL_TOKENS as readonly string[]).includes(text)) return text;
  const bytes = byteToUnicode();
  return [...Buffer.from(text, "utf8")].map((b) => bytes[b] ?? "").join("");
}

function padVocabulary(vocabulary: BpeVocabulary, size: number | undefined): BpeVocabulary {
  if (size === undefined || size <= vocabulary.tokens.length) return vocabulary;
  const tokens = [...vocabulary.tokens];
  const types = [...vocabulary.types];
  for (let id = tokens.length; id < size; id++) {
    tokens.push(`[PAD${id}]`);
    // llama.cpp's "unused" type: never produced by tokenising text.
    types.push(5);
  }
  return { tokens, types, merges: vocabulary.merges };
}

// ---------------------------------------------------------------------------------------------------------------
// Ready-made test models

export interface TinyModelOptions {
  readonly favouredToken?: string;
  /** Leave the labels out of the merges, so their first tokens collide ("n" for negative and neutral). */
  readonly collidingLabels?: boolean;
  readonly seed?: number;
  /** Pads the vocabulary with unused tokens up to this size, to give a tiny model a real model's vocabulary size. */
  readonly vocabularySize?: number;
  /** More whole-word tokens, such as a task's labels, so that each is one token as in a real vocabulary. */
  readonly extraWords?: readonly string[];
}

/** A 2-layer, 64-wide Qwen2 model: loads in milliseconds and generates nonsense at hundreds of tokens a second. */
export function writeTinyQwenGguf(path: string, options: TinyModelOptions = {}): Promise<string> {
  const baseWords = options.collidingLabels
    ? TINY_VOCABULARY_WORDS.filter((word) => !/^(positive|negative|neutral)$/i.test(word))
    : TINY_VOCABULARY_WORDS;
  const words = [...baseWords, ...(options.extraWords ?? [])];
  return writeQwenGguf({
    path,
    name: "moodbot-tiny-qwen2",
    layers: 2,
    hidden: 64,
    heads: 4,
    kvHeads: 2,
    ffn: 128,
    vocabulary: buildBpeVocabulary(words),
    ...(options.vocabularySize === undefined ? {} : { vocabularySize: options.vocabularySize }),
    seed: options.seed ?? 7,
    ...(options.favouredToken === undefined ? {} : { favouredToken: options.favouredToken }),
  });
}
