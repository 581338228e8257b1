/** How fast the measured costs follow change. */
const COST_SMOOTHING = 0.2;
/**
 * Until a background token's cost has been measured, it is taken as this share of a step alone: on the side of
 * caution where per-token compute dominates (a CPU), and corrected by the first pass that carries one.
 */
const UNMEASURED_TOKEN_SHARE = 0.25;
/** The credit can save up this many allowances: enough for a wide pass of background work. */
export const CREDIT_CAP_ALLOWANCES = 8;

/** What a pass carried and took, once it returned. */
export interface PassMeasurement {
  /** A pass with a generation's prompt in it says nothing about steps or background tokens. */
  readonly carriedPrompt: boolean;
  /** Generation steps it carried. */
  readonly steps: number;
  /** Tokens of the classifications it carried. */
  readonly backgroundTokens: number;
  readonly elapsedMs: number;
  /** Generations holding a sequence once it returned. */
  readonly generationsRunning: number;
}

/**
 * The cost model behind the chat speed floor: the measured time of a pass of steps alone (by how many steps), the
 * measured cost of one background token riding along, and the generations' credit in milliseconds. Every pass
 * with steps earns an allowance of 1 / chatSpeedFloor times its steps' time alone and pays what it took, so over
 * any stretch of passes the steps stay within the floor; background work rides only as far as the credit covers.
 */
export class PassCost {
  /** Measured duration of a pass that carried only generation steps, by how many steps it carried. */
  private readonly stepCostMs = new Map<number, number>();
  /** Measured cost of one background token riding in a pass, beyond the pass's steps. */
  private tokenMs: number | undefined;
  private credit = 0;

  constructor(private readonly chatSpeedFloor: number) {}

  /** The generations' credit now: what background work may still add to their passes. */
  get creditMs(): number {
    return this.credit;
  }

  /** The measured cost of one background token, or undefined until a pass has shown it. */
  get backgroundTokenMs(): number | undefined {
    return this.tokenMs;
  }

  /** The measured time of a pass of `steps` generation steps alone, or undefined until one was timed. */
  stepAloneMs(steps: number): number | undefined {
    return this.stepCostMs.get(steps);
  }

  /** No generation is running: what their passes saved up is gone. */
  resetCredit(): void {
    this.credit = 0;
  }

  /**
   * How much of a batch (each entry its tokens) may ride with `steps` generation steps: all of it once the credit
   * covers it, none while the credit is still growing toward it, and as much as fits (at least one) once the
   * credit is at its cap, so a batch too costly for any credit cannot starve.
   */
  affordableCount(steps: number, batchTokens: readonly number[]): number {
    const alone = this.stepCostMs.get(steps);
    // A step alone must be timed first: until then nothing rides along.
    if (alone === undefined) return 0;
    const allowance = alone / this.chatSpeedFloor;
    const perToken = this.tokenMs ?? alone * UNMEASURED_TOKEN_SHARE;
    let tokens = 0;
    let fits = 0;
    for (const jobTokens of batchTokens) {
      tokens += jobTokens;
      if (this.credit + allowance - (alone + perToken * tokens) < 0) break;
      fits++;
    }
    if (fits === batchTokens.length) return fits;
    return this.credit >= allowance * CREDIT_CAP_ALLOWANCES ? Math.max(1, fits) : 0;
  }

  /** Updates the measured costs and the generations' credit from a pass that just ran. */
  account(pass: PassMeasurement): void {
    if (pass.carriedPrompt) return;
    const { steps, backgroundTokens, elapsedMs } = pass;
    if (steps > 0 && backgroundTokens === 0) {
      this.stepCostMs.set(steps, smooth(this.stepCostMs.get(steps), elapsedMs));
    }
    // A pass of steps and background work, or of background work alone once a single step was timed, tells
    // what a background token adds.
    const base = steps > 0 ? this.stepCostMs.get(steps) : this.stepCostMs.get(1);
    const ownTokens = steps > 0 ? backgroundTokens : backgroundTokens - 1;
    if (base !== undefined && backgroundTokens > 0 && ownTokens > 0) {
      const perToken = Math.max(0, (elapsedMs - base) / ownTokens);
      this.tokenMs = smooth(this.tokenMs, perToken);
    }
    if (steps === 0) {
      if (pass.generationsRunning === 0) this.credit = 0;
      return;
    }
    const alone = this.stepCostMs.get(steps);
    if (alone === undefined) return;
    const allowance = alone / this.chatSpeedFloor;
    this.credit = Math.min(allowance * CREDIT_CAP_ALLOWANCES, this.credit + allowance - elapsedMs);
  }
}

function smooth(before: number | undefined, measured: number): number {
  return before === undefined ? measured : before + COST_SMOOTHING * (measured - before);
}
