import { MoodbotError } from "../../platform/errors.js";
import { inspectLabelTokens, labelProbabilitiesFromLogits, pickLabel } from "../labels.js";
import type { LabelResult } from "../llm.js";
import type { LabelReading, ServerBackend, VoteToken } from "./backend.js";

/*
 * The tokens each label is read from, on a server: the same spellings the in-process classifier pools (each
 * label, and its capitalised form when that starts with a token of its own), resolved through the server's
 * tokenizer where it has one, or left as text for servers whose logprobs name tokens by their strings.
 */

/** Two labels of a set start with the same token in the served model's vocabulary: one token cannot tell them apart. */
export class LabelsUnreadableError extends MoodbotError {
  override readonly name = "LabelsUnreadableError";
  constructor(
    /** "sentiment" or "task:<name>". */
    readonly labelSet: string,
    readonly labels: readonly string[],
  ) {
    super(
      `the served model's vocabulary gives two of the ${labelSet} labels (${labels.join(", ")}) the same first ` +
        "token, so one token cannot tell them apart; rename the labels or serve another model",
    );
  }
}

/** The vote tokens of one label set, and which label each votes for. */
export interface LabelVotes<L extends string> {
  readonly labels: readonly L[];
  readonly tieBreak: L;
  readonly voteTokens: readonly VoteToken[];
  /** Indices into `voteTokens`, per label (canonical spelling first). */
  readonly byLabel: Readonly<Record<L, readonly number[]>>;
}

/** Spelled exactly as inspectLabelTokens spells it, so the same texts are tokenised. */
const capitalised = (label: string): string => label[0]?.toUpperCase() + label.slice(1);

/**
 * Resolves a label set's vote tokens. With a tokenizer, each spelling is tokenised as plain text (the model
 * answers right after the assistant's turn opens, so no leading space) and the in-process rule picks the tokens;
 * a set whose labels share a first token throws LabelsUnreadableError. Without one, each spelling is a vote token
 * by its text, and the server's answer is matched by string.
 */
export async function resolveLabelVotes<L extends string>(
  labelSet: string,
  labels: readonly L[],
  tieBreak: L,
  tokenizer: ServerBackend["tokenizer"],
  signal: AbortSignal,
): Promise<LabelVotes<L>> {
  if (!tokenizer) return votesByText(labels, tieBreak);
  const spellings = [...new Set(labels.flatMap((label) => [label, capitalised(label)]))];
  const tokenised = await Promise.all(spellings.map((text) => tokenizer.tokenize(text, false, signal)));
  const byText = new Map(spellings.map((text, index) => [text, tokenised[index] ?? []]));
  const inspected = inspectLabelTokens((text) => byText.get(text) ?? [], labels);
  if (!inspected.firstTokensUnique) throw new LabelsUnreadableError(labelSet, labels);
  const voteTokens: VoteToken[] = [];
  const byLabel = {} as Record<L, number[]>;
  for (const label of labels) {
    // firstTokens lists the canonical spelling's token first, then the capitalised one's when it has its own.
    byLabel[label] = inspected.firstTokens[label].map((id, index) => {
      voteTokens.push({ id, text: index === 0 ? label : capitalised(label) });
      return voteTokens.length - 1;
    });
  }
  return { labels, tieBreak, voteTokens, byLabel };
}

function votesByText<L extends string>(labels: readonly L[], tieBreak: L): LabelVotes<L> {
  const voteTokens: VoteToken[] = [];
  const byLabel = {} as Record<L, number[]>;
  for (const label of labels) {
    const spellings = [...new Set([label, capitalised(label)])];
    byLabel[label] = spellings.map((text) => {
      voteTokens.push({ id: undefined, text });
      return voteTokens.length - 1;
    });
  }
  return { labels, tieBreak, voteTokens, byLabel };
}

/** How the input was measured for one classification. */
export interface InputMeasure {
  /** The message's tokens and the suffix's, when the bot counted them (servers that tokenise). */
  readonly evaluatedTokens: number | undefined;
  readonly truncated: boolean;
}

/**
 * A server's reading as a label result. The logprobs are used as logits: a softmax over the vote tokens of their
 * log-probabilities equals the softmax of their logits, because log-probabilities are logits less one constant.
 * A vote token the server did not return counts as impossible; when none came back, the labels tie.
 */
export function labelResultFromReading<L extends string>(
  votes: LabelVotes<L>,
  reading: LabelReading,
  measure: InputMeasure,
): LabelResult<L> {
  const logits = new Map<number, number>();
  reading.logprobs.forEach((logprob, index) => {
    if (logprob !== undefined && Number.isFinite(logprob)) logits.set(index, logprob);
  });
  const probabilities = labelProbabilitiesFromLogits(logits, votes.byLabel, votes.labels);
  const label = pickLabel(probabilities, votes.labels, votes.tieBreak);
  return {
    label,
    confidence: probabilities[label],
    probabilities,
    method: reading.method,
    evaluatedTokens: measure.evaluatedTokens ?? reading.evaluatedPromptTokens ?? 0,
    truncated: measure.truncated,
  };
}

/** True when the reading holds no probability at all: a server that returns none cannot classify. */
export const readingIsEmpty = (reading: LabelReading): boolean =>
  reading.logprobs.every((logprob) => logprob === undefined || !Number.isFinite(logprob));
