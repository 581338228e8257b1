import { describe, expect, it } from "vitest";
import { ChannelFaults, FORBIDDEN_COOLDOWN_MS } from "../../src/discord/channelFaults.js";
import { ChatGate } from "../../src/discord/chatGate.js";

function gate(userPerMinute = 2, channelPerMinute = 3, channelQueue = 0) {
  const clock = { now: 0 };
  return {
    clock,
    gate: new ChatGate({ userPerMinute, channelPerMinute, channelQueue, now: () => clock.now }),
  };
}

describe("ChatGate", () => {
  it("limits each user per minute, notifying once per window", () => {
    const { gate: g, clock } = gate(2, 100);
    for (let i = 0; i < 2; i++) {
      const admission = g.admit("alice", `c${i}`);
      expect(admission.admitted).toBe(true);
      if (admission.admitted) admission.release();
    }
    expect(g.admit("alice", "c9")).toEqual({ admitted: false, reason: "user-rate", notify: true });
    expect(g.admit("alice", "c9")).toEqual({ admitted: false, reason: "user-rate", notify: false });
    const bob = g.admit("bob", "c9");
    expect(bob.admitted).toBe(true);
    if (bob.admitted) bob.release();
    clock.now = 60_001;
    expect(g.admit("alice", "c9").admitted).toBe(true);
  });

  it("limits each channel per minute, all users together", () => {
    const { gate: g } = gate(100, 2);
    for (const user of ["a", "b"]) {
      const admission = g.admit(user, "busy-channel");
      if (admission.admitted) admission.release();
    }
    expect(g.admit("c", "busy-channel")).toMatchObject({ admitted: false, reason: "channel-rate" });
    expect(g.admit("c", "other").admitted).toBe(true);
  });

  it("with no queue, allows one generation in flight per channel", () => {
    const { gate: g } = gate(100, 100, 0);
    const first = g.admit("a", "c");
    expect(first.admitted).toBe(true);
    expect(g.admit("b", "c")).toMatchObject({ admitted: false, reason: "busy", notify: true });
    expect(g.admit("b", "other").admitted).toBe(true);
    if (first.admitted) {
      first.release();
      first.release();
    }
    expect(g.admit("b", "c").admitted).toBe(true);
  });

  it("lines mentions up per channel: each turn starts when the one before it is released", async () => {
    const { gate: g } = gate(100, 100, 2);
    const admissions = ["a", "b", "c"].map((user) => g.admit(user, "c"));
    expect(admissions.map((admission) => admission.admitted && admission.position)).toEqual([0, 1, 2]);
    expect(g.admit("d", "c")).toMatchObject({ admitted: false, reason: "busy" });
    const started: number[] = [];
    const [first, second, third] = admissions;
    if (!first?.admitted || !second?.admitted || !third?.admitted) throw new Error("all three were admitted");
    void third.turn.then(() => started.push(3));
    void second.turn.then(() => started.push(2));
    await first.turn;
    started.push(1);
    first.release();
    await second.turn;
    expect(started).toEqual([1, 2]);
    second.release();
    await third.turn;
    expect(started).toEqual([1, 2, 3]);
    // One place left again once the first two are done.
    expect(g.admit("d", "c").admitted).toBe(true);
  });

  it("counts a waiting mention toward the rate limits", () => {
    const { gate: g } = gate(2, 100, 5);
    expect(g.admit("alice", "c").admitted).toBe(true);
    expect(g.admit("alice", "c").admitted).toBe(true);
    expect(g.admit("alice", "c")).toMatchObject({ admitted: false, reason: "user-rate" });
  });
});

describe("ChannelFaults", () => {
  it("reports a 403 once per channel and lets the channel be tried again after the cooldown", () => {
    const clock = { now: 1_000 };
    const faults = new ChannelFaults(() => clock.now);
    expect(faults.cannotReact("c")).toBe(false);
    expect(faults.recordReactionForbidden("c")).toBe(true);
    expect(faults.recordReactionForbidden("c")).toBe(false);
    expect(faults.cannotReact("c")).toBe(true);
    expect(faults.cannotReact("other")).toBe(false);
    clock.now += FORBIDDEN_COOLDOWN_MS + 1;
    expect(faults.cannotReact("c")).toBe(false);
    expect(faults.recordReactionForbidden("c")).toBe(true);
  });
});
