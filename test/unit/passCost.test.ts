import { describe, expect, it } from "vitest";
import { CREDIT_CAP_ALLOWANCES, PassCost } from "../../src/llm/inProcess/passCost.js";

/** A pass of `steps` generation steps and `backgroundTokens` of classifications, no prompt in it. */
const pass = (steps: number, backgroundTokens: number, elapsedMs: number, generationsRunning = steps) => ({
  carriedPrompt: false,
  steps,
  backgroundTokens,
  elapsedMs,
  generationsRunning,
});

describe("PassCost: the measured costs and the credit", () => {
  // A floor of 0.5 and a 40 ms step alone: each pass with steps is allowed 80 ms, so one of steps alone saves 40.
  const floor = 0.5;
  const stepMs = 40;
  const allowance = stepMs / floor;

  it("lets nothing ride along until a step alone was timed, and learns nothing from a prompt's pass", () => {
    const cost = new PassCost(floor);
    expect(cost.affordableCount(1, [1])).toBe(0);
    cost.account({ ...pass(1, 0, 500), carriedPrompt: true });
    expect(cost.stepAloneMs(1)).toBeUndefined();
    expect(cost.creditMs).toBe(0);
    cost.account(pass(1, 0, stepMs));
    expect(cost.stepAloneMs(1)).toBe(stepMs);
    expect(cost.creditMs).toBe(allowance - stepMs);
  });

  it("saves each step pass's allowance minus what it took, up to eight allowances", () => {
    const cost = new PassCost(floor);
    for (let i = 0; i < 3; i++) cost.account(pass(1, 0, stepMs));
    expect(cost.creditMs).toBe(3 * (allowance - stepMs));
    for (let i = 0; i < 30; i++) cost.account(pass(1, 0, stepMs));
    expect(cost.creditMs).toBe(CREDIT_CAP_ALLOWANCES * allowance);
    // A pass that carried background work pays what it took beyond its allowance.
    cost.account(pass(1, 10, 2 * allowance));
    expect(cost.creditMs).toBe((CREDIT_CAP_ALLOWANCES - 1) * allowance);
  });

  it("sends a whole batch once the credit covers it, none while it grows, and at the cap at least one", () => {
    const cost = new PassCost(floor);
    cost.account(pass(1, 0, stepMs));
    // Credit 40 ms; an unmeasured token is taken as a quarter of the step (10 ms): 8 tokens fit.
    expect(cost.affordableCount(1, [4, 4])).toBe(2);
    expect(cost.affordableCount(1, [4, 4, 1])).toBe(0);
    for (let i = 0; i < 30; i++) cost.account(pass(1, 0, stepMs));
    expect(cost.affordableCount(1, [4, 4, 1])).toBe(3);
    // At the cap a batch too costly for any credit still goes as far as it fits, and at least its first.
    expect(cost.affordableCount(1, [50, 50, 50])).toBe(1);
    expect(cost.affordableCount(1, [1000])).toBe(1);
    // Another number of steps has its own time alone, not yet measured.
    expect(cost.affordableCount(2, [1])).toBe(0);
  });

  it("measures a background token from passes that carried one, with steps or alone, and smooths it", () => {
    const cost = new PassCost(floor);
    // Background work alone before a step was timed tells nothing.
    cost.account(pass(0, 11, 90, 0));
    expect(cost.backgroundTokenMs).toBeUndefined();
    cost.account(pass(1, 0, stepMs));
    cost.account(pass(1, 10, stepMs + 50));
    expect(cost.backgroundTokenMs).toBe(5);
    // Alone, the first of its tokens stands in for the step: 11 tokens, 10 of them beyond it.
    cost.account(pass(0, 11, stepMs + 150, 1));
    expect(cost.backgroundTokenMs).toBeCloseTo(5 + 0.2 * (15 - 5));
    // Neither pass changed the time of a step alone.
    expect(cost.stepAloneMs(1)).toBe(stepMs);
  });

  it("forgets the credit once no generation runs", () => {
    const cost = new PassCost(floor);
    for (let i = 0; i < 3; i++) cost.account(pass(1, 0, stepMs));
    cost.account(pass(0, 13, 100, 1));
    expect(cost.creditMs).toBe(3 * (allowance - stepMs));
    cost.account(pass(0, 13, 100, 0));
    expect(cost.creditMs).toBe(0);
    for (let i = 0; i < 3; i++) cost.account(pass(1, 0, stepMs));
    cost.resetCredit();
    expect(cost.creditMs).toBe(0);
  });
});
