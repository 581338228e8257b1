/*
 * Reading a label from the next-token distribution, for every runtime: which tokens vote for each label, and the
 * label probabilities those tokens' logits give. Pure, so it is tested without a model.
 */

/**
 * The tokens of each label, and whether one forward pass can tell them apart: that needs every label's first
 * token to be unique. Capitalised spellings are counted too when their first tokens are unique, because small
 * models often answer "Positive".
 */
export interface LabelTokens<L extends string> {
  readonly canonical: Readonly<Record<L, readonly number[]>>;
  /** First tokens that vote for each label (canonical spelling first). */
  readonly firstTokens: Readonly<Record<L, readonly number[]>>;
  readonly firstTokensUnique: boolean;
}

export function inspectLabelTokens<L extends string>(
  tokenize: (text: string) => readonly number[],
  labels: readonly L[],
): LabelTokens<L> {
  const canonical = {} as Record<L, readonly number[]>;
  for (const label of labels) canonical[label] = tokenize(label);
  const firsts = labels.map((label) => canonical[label][0]);
  const firstTokensUnique =
    firsts.every((token) => token !== undefined) && new Set(firsts).size === firsts.length;

  const firstTokens = {} as Record<L, number[]>;
  const owner = new Map<number, L>();
  for (const label of labels) {
    const first = canonical[label][0];
    firstTokens[label] = first === undefined ? [] : [first];
    if (first !== undefined) owner.set(first, label);
  }
  if (firstTokensUnique) {
    for (const label of labels) {
      const capitalised = label[0]?.toUpperCase() + label.slice(1);
      const first = tokenize(capitalised)[0];
      if (first !== undefined && !owner.has(first)) {
        owner.set(first, label);
        firstTokens[label].push(first);
      }
    }
  }
  return { canonical, firstTokens, firstTokensUnique };
}

/**
 * Turns label logits into label probabilities: a softmax over the label tokens only, with each label's spellings
 * pooled. Pure, so it is tested without a model.
 */
export function labelProbabilitiesFromLogits<L extends string>(
  logits: ReadonlyMap<number, number>,
  firstTokens: Readonly<Record<L, readonly number[]>>,
  labels: readonly L[],
): Record<L, number> {
  let max = Number.NEGATIVE_INFINITY;
  for (const label of labels) {
    for (const token of firstTokens[label])
      max = Math.max(max, logits.get(token) ?? Number.NEGATIVE_INFINITY);
  }
  const weights = {} as Record<L, number>;
  let total = 0;
  for (const label of labels) {
    let weight = 0;
    for (const token of firstTokens[label]) {
      const logit = logits.get(token);
      if (logit !== undefined && Number.isFinite(max)) weight += Math.exp(logit - max);
    }
    weights[label] = weight;
    total += weight;
  }
  const probabilities = {} as Record<L, number>;
  for (const label of labels) {
    probabilities[label] = total > 0 ? weights[label] / total : 1 / labels.length;
  }
  return probabilities;
}

/**
 * The most probable label. When two or more labels share the top probability the model cannot tell them apart,
 * and the answer is `tieBreak`: sentiment reads a tie as neutral.
 */
export function pickLabel<L extends string>(
  probabilities: Readonly<Record<L, number>>,
  labels: readonly L[],
  tieBreak: L,
): L {
  const top = Math.max(...labels.map((label) => probabilities[label]));
  const best = labels.filter((label) => probabilities[label] === top);
  return best.length === 1 && best[0] !== undefined ? best[0] : tieBreak;
}
