import {
  buildBpeVocabulary,
  byteToUnicode,
  encodeTokenText,
  qwenMetadata,
  TINY_VOCABULARY_WORDS,
} from "./gguf.js";
import { createRandom, type TensorSpec, writeGguf } from "./ggufContainer.js";

/*
 * A Qwen2 test model whose label probabilities follow the words of the message, for comparing two runtimes: on
 * random weights every input gives about the same label probabilities, so a runtime that ignored the message
 * would still agree with one that read it.
 *
 * One layer. Its queries and keys are zero, so every position attends uniformly to all positions so far: the
 * attention adds the mean of the (RMS-normalised) input embeddings, as its output projection passes it on, to the
 * residual. Its feed-forward weights are zero and the embeddings are tied, so the next-token logits are
 * E · norm(e_last + W_o · mean).
 *
 * Each label of the bot's label sets (sentiment, /intent, moderation) owns two dimensions: its tokens (both
 * spellings) point along the first, a few cue words ("awful" for negative, "pls" for request) along the second,
 * and the output projection carries the mean's cue dimension into the label's. A message with a cue word lifts
 * its label by some 2.6 logits; one without leaves the labels even. The other tokens are random in dimensions of
 * their own, which the attention does not pass on (the last token keeps its own): llama.cpp's CPU flash attention
 * sums a short batch's attention in f16 (a long batch's in f32), so a random mean carries rounding that differs
 * between a cold prompt and a cached one: earlier versions of this model, which passed it on, read that as
 * label-probability differences of up to 1.3e-3. The sums it passes on add only values that f16 holds and adds
 * exactly (8, and 5.65625 for a two-label cue word), so the runtimes agree to about 1e-6, cold or cached.
 */

/** The labels (sentiment's, then prompts/tasks/intent.json's, then toxicity.json's): each owns two dimensions. */
export const LABEL_SENSITIVE_LABELS = [
  "positive",
  "negative",
  "neutral",
  "question",
  "request",
  "complaint",
  "praise",
  "chit-chat",
  "ok",
  "insult",
  "threat",
  "harassment",
  "spam",
] as const;
type SensitiveLabel = (typeof LABEL_SENSITIVE_LABELS)[number];

/**
 * Words that lean towards labels: each is one token, with a leading space as words mid-sentence have. None occurs
 * in the bot's prompts, so the cached prefixes lean towards no label.
 */
const CUE_WORDS: Readonly<Record<string, readonly SensitiveLabel[]>> = {
  " awesome": ["positive", "praise"],
  " wonderful": ["positive", "praise"],
  " awful": ["negative", "complaint"],
  " terrible": ["negative", "complaint"],
  " broken": ["negative", "complaint"],
  " tomorrow": ["neutral"],
  " weather": ["neutral", "chit-chat"],
  " when": ["question"],
  " where": ["question"],
  " how": ["question"],
  " kindly": ["request"],
  " pls": ["request"],
  " bravo": ["praise"],
  " kudos": ["praise"],
  " hello": ["chit-chat"],
  " fine": ["ok"],
  " idiot": ["insult"],
  " hurt": ["threat"],
  " stalk": ["harassment"],
  " click": ["spam"],
  " nitro": ["spam"],
};

/** The first token of each label, both spellings, so that each is read whole as the classifiers expect. */
function labelWords(): string[] {
  const words: string[] = [];
  for (const label of LABEL_SENSITIVE_LABELS) {
    const first = label.split("-")[0] ?? label;
    words.push(first, first[0]?.toUpperCase() + first.slice(1));
    // "chit-chat" splits into "chit" and "-chat" in Qwen's pre-tokeniser; both pieces are words.
    if (label.includes("-")) words.push(label.slice(first.length));
  }
  return words;
}

/** BPE as llama.cpp applies it to one pre-token: the lowest-ranked adjacent pair merges first. */
function applyMerges(symbols: readonly string[], ranks: ReadonlyMap<string, number>): string[] {
  const parts = [...symbols];
  for (;;) {
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < parts.length; i++) {
      const rank = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (rank !== undefined && rank < bestRank) {
        best = i;
        bestRank = rank;
      }
    }
    if (best < 0) return parts;
    parts.splice(best, 2, `${parts[best]}${parts[best + 1]}`);
  }
}

function everyWordWhole(words: readonly string[]): boolean {
  const ranks = new Map(buildBpeVocabulary(words).merges.map((merge, rank) => [merge, rank]));
  const bytes = byteToUnicode();
  return words.every(
    (word) =>
      applyMerges(
        [...Buffer.from(word, "utf8")].map((b) => bytes[b] ?? ""),
        ranks,
      ).length === 1,
  );
}

/**
 * Orders the words so that each tokenises whole. One word's merge chain can cut another's ("t h" from "threat"
 * splits " weather" before its own chain reaches the "t"), so each word goes at the latest place in the merge
 * order where no word is cut.
 */
function wholeWordOrder(words: readonly string[]): string[] {
  let order: string[] = [];
  for (const word of words) {
    let placed: string[] | undefined;
    for (let at = order.length; at >= 0 && placed === undefined; at--) {
      const candidate = [...order.slice(0, at), word, ...order.slice(at)];
      if (everyWordWhole(candidate)) placed = candidate;
    }
    if (placed === undefined) throw new Error(`no merge order keeps ${JSON.stringify(word)} one token`);
    order = placed;
  }
  return order;
}

export interface LabelSensitiveModelOptions {
  readonly path: string;
  readonly seed?: number;
}

const HIDDEN = 64;
const HEADS = 4;
const FFN = 32;
/** Each label's output dimension is its index in LABEL_SENSITIVE_LABELS; its cue dimension is this much further. */
const CUE_FROM = 16;
/** Dimensions from here on hold the random part of every other token's embedding. */
const NOISE_FROM = 32;
const NOISE_SCALE = 0.5;
/** How far a label's tokens point along the label's dimension: the logit scale at which cue words are read. */
const LABEL_WEIGHT = 12;
/**
 * Every label token also points far along one shared dimension. Its logit gains the same amount for every label,
 * which the softmax over the labels cancels; and a label token's normalised input is almost all that dimension,
 * 8 in f16, which the attention sums exactly.
 */
const SHARED_LABEL_DIMENSION = 15;
const SHARED_LABEL_WEIGHT = 10_000;
/** Scales the attention's mean against the last token's residual. */
const ATTENTION_GAIN = 4;
/**
 * How much of the shared dimension the attention passes on. The prompts' own label words lift every label token
 * by the same amount through it: this share puts them some 5 logits above every other token and 11 above most
 * (measured on the moderation prompt), so the default sampler chain keeps them and distorts them.
 */
const SHARED_LABEL_PASS = 0.0006;

/** Writes the label-sensitive model: the tiny vocabulary, every label's words and the cue words, one layer. */
export async function writeLabelSensitiveGguf(options: LabelSensitiveModelOptions): Promise<string> {
  const vocabulary = buildBpeVocabulary(
    wholeWordOrder([...labelWords(), ...Object.keys(CUE_WORDS), ...TINY_VOCABULARY_WORDS]),
  );
  const directions = new Map<number, SensitiveLabel[]>();
  const idOf = (word: string) => {
    const id = vocabulary.tokens.indexOf(encodeTokenText(word));
    if (id < 0) throw new Error(`${JSON.stringify(word)} is not one token of the vocabulary`);
    return id;
  };
  for (const label of LABEL_SENSITIVE_LABELS) {
    const first = label.split("-")[0] ?? label;
    directions.set(idOf(first), [label]);
    directions.set(idOf(first[0]?.toUpperCase() + first.slice(1)), [label]);
  }
  const cueIds = new Set<number>();
  for (const [word, labels] of Object.entries(CUE_WORDS)) {
    directions.set(idOf(word), [...labels]);
    cueIds.add(idOf(word));
  }

  const random = createRandom(options.seed ?? 11);
  const zeros = (_row: number, out: Float32Array) => out.fill(0);
  const ones = (_row: number, out: Float32Array) => out.fill(1);
  const identity =
    (gain: number) =>
    (row: number, out: Float32Array): void => {
      out.fill(0);
      out[row] = gain;
    };
  const tensors: TensorSpec[] = [
    {
      name: "token_embd.weight",
      dims: [HIDDEN, vocabulary.tokens.length],
      type: "f32",
      fillRow: (row, out) => {
        out.fill(0);
        const labels = directions.get(row) ?? [];
        const dimensions = labels.map((label) => LABEL_SENSITIVE_LABELS.indexOf(label));
        if (cueIds.has(row)) {
          for (const dimension of dimensions) out[CUE_FROM + dimension] = 1;
        } else if (dimensions.length > 0) {
          for (const dimension of dimensions) out[dimension] = LABEL_WEIGHT;
          out[SHARED_LABEL_DIMENSION] = SHARED_LABEL_WEIGHT;
        } else {
          for (let i = NOISE_FROM; i < HIDDEN; i++) out[i] = (random() * 2 - 1) * NOISE_SCALE;
        }
      },
    },
    { name: "blk.0.attn_norm.weight", dims: [HIDDEN], type: "f32", fillRow: ones },
    { name: "blk.0.attn_q.weight", dims: [HIDDEN, HIDDEN], type: "f32", fillRow: zeros },
    { name: "blk.0.attn_q.bias", dims: [HIDDEN], type: "f32", fillRow: zeros },
    { name: "blk.0.attn_k.weight", dims: [HIDDEN, HIDDEN], type: "f32", fillRow: zeros },
    { name: "blk.0.attn_k.bias", dims: [HIDDEN], type: "f32", fillRow: zeros },
    { name: "blk.0.attn_v.weight", dims: [HIDDEN, HIDDEN], type: "f32", fillRow: identity(1) },
    { name: "blk.0.attn_v.bias", dims: [HIDDEN], type: "f32", fillRow: zeros },
    {
      name: "blk.0.attn_output.weight",
      dims: [HIDDEN, HIDDEN],
      type: "f32",
      fillRow: (row, out) => {
        out.fill(0);
        // A label's dimension takes the mean of its cue dimension: the label words the prompts name add nothing.
        if (row < LABEL_SENSITIVE_LABELS.length) out[CUE_FROM + row] = ATTENTION_GAIN;
        if (row === SHARED_LABEL_DIMENSION) out[row] = ATTENTION_GAIN * SHARED_LABEL_PASS;
      },
    },
    { name: "blk.0.ffn_norm.weight", dims: [HIDDEN], type: "f32", fillRow: ones },
    { name: "blk.0.ffn_gate.weight", dims: [HIDDEN, FFN], type: "f32", fillRow: zeros },
    { name: "blk.0.ffn_up.weight", dims: [HIDDEN, FFN], type: "f32", fillRow: zeros },
    { name: "blk.0.ffn_down.weight", dims: [FFN, HIDDEN], type: "f32", fillRow: zeros },
    { name: "output_norm.weight", dims: [HIDDEN], type: "f32", fillRow: ones },
  ];
  const metadata = qwenMetadata(
    {
      name: "moodbot-label-sensitive-qwen2",
      layers: 1,
      hidden: HIDDEN,
      heads: HEADS,
      kvHeads: HEADS,
      ffn: FFN,
    },
    vocabulary,
  );
  await writeGguf(options.path, metadata, tensors);
  return options.path;
}
