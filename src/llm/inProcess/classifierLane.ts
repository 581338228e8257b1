import type { LabelResult } from "../llm.js";
import type { LabelClassifier } from "./labelClassifier.js";
import type { Classification, ClassifierLane } from "./passModel.js";

/**
 * A label task's classifiers, one per sequence, as one lane of the scheduler: a pass can carry as many of this
 * lane's classifications as it has sequences free.
 */
export class ClassifierPool<L extends string> implements ClassifierLane<LabelResult<L>> {
  private readonly free: LabelClassifier<L>[];

  constructor(
    readonly name: string,
    private readonly classifiers: readonly [LabelClassifier<L>, ...LabelClassifier<L>[]],
  ) {
    this.free = [...classifiers];
  }

  get slots(): number {
    return this.classifiers.length;
  }

  /** Any of the classifiers, for what they share: the method and the prefix. */
  get template(): LabelClassifier<L> {
    return this.classifiers[0];
  }

  tokensFor(text: string): number {
    return this.template.inputTokenCount(text);
  }

  prepare(text: string): Classification<LabelResult<L>> | undefined {
    const classifier = this.free.pop();
    if (!classifier) return undefined;
    let held = true;
    const giveBack = () => {
      if (!held) return;
      held = false;
      this.free.push(classifier);
    };
    return {
      run: () => classifier.classify(text).finally(giveBack),
      release: giveBack,
    };
  }
}
