import { describe, expect, it } from "vitest";
import { isOutcomeEnvelope, type Outcome, Outcomes, portable } from "../../src/outcomes/outcomes.js";
import { OutcomeLog } from "../../testkit/outcomeLog.js";

const ref = { messageId: "11", channelId: "22", guildId: "33", shardId: 0 };

describe("the outcome hook", () => {
  it("adds a message's ids to what its teller is told, for every listener", () => {
    const hook = new Outcomes((error) => {
      throw error;
    });
    const first: Outcome[] = [];
    const second: Outcome[] = [];
    hook.subscribe((outcome) => first.push(outcome));
    const unsubscribe = hook.subscribe((outcome) => second.push(outcome));
    hook.about(ref)({ kind: "skipped", job: "reaction", reason: "reactions are off" });
    unsubscribe();
    hook.about(ref)({ kind: "queued", position: 1 });
    expect(first).toEqual([
      { ...ref, kind: "skipped", job: "reaction", reason: "reactions are off" },
      { ...ref, kind: "queued", position: 1 },
    ]);
    expect(second).toHaveLength(1);
  });

  it("keeps a listener's failure from the code that emitted, and from the other listeners", () => {
    const failures: unknown[] = [];
    const hook = new Outcomes((error) => failures.push(error));
    const seen: Outcome[] = [];
    hook.subscribe(() => {
      throw new Error("a broken listener");
    });
    hook.subscribe((outcome) => seen.push(outcome));
    expect(() => hook.emit({ kind: "deleted", scope: "member", id: "44" })).not.toThrow();
    expect(seen).toHaveLength(1);
    expect(failures).toEqual([new Error("a broken listener")]);
  });

  it("crosses a process boundary as plain JSON, a failure's error reduced to its name and message", () => {
    const failed: Outcome = {
      ...ref,
      kind: "failed",
      job: "reply",
      cutShort: true,
      error: new TypeError("the socket closed"),
    };
    const envelope = JSON.parse(JSON.stringify({ moodbotOutcome: portable(failed) })) as unknown;
    expect(isOutcomeEnvelope(envelope)).toBe(true);
    expect(envelope).toEqual({
      moodbotOutcome: {
        ...ref,
        kind: "failed",
        job: "reply",
        cutShort: true,
        error: { name: "TypeError", message: "the socket closed" },
      },
    });
    expect(isOutcomeEnvelope({ _ready: true })).toBe(false);
  });
});

describe("the test kit's outcome log", () => {
  it("resolves a wait on the matching outcome's arrival, counting those already seen", async () => {
    const log = new OutcomeLog();
    log.record({ ...ref, kind: "reacted", label: "positive", emoji: "😄", confidence: 0.9, cached: false });
    const waiting = log.waitFor("reacted", { channelId: "22" }, { count: 2, timeoutMs: 5_000 });
    log.record({ ...ref, messageId: "12", kind: "skipped", job: "reaction", reason: "no text" });
    log.record({
      ...ref,
      messageId: "13",
      kind: "reacted",
      label: "negative",
      emoji: "😢",
      confidence: 0.8,
      cached: false,
    });
    const reacted = await waiting;
    expect(reacted.map((outcome) => outcome.messageId)).toEqual(["11", "13"]);
    expect(log.about("12")).toHaveLength(1);
  });

  it("fails a wait that times out, naming what came instead", async () => {
    const log = new OutcomeLog();
    log.record({ ...ref, kind: "skipped", job: "message", reason: "from a bot" });
    await expect(log.next("replied", { messageId: "11" }, 50)).rejects.toThrow(
      /no 1× "replied".*\n.*from a bot/,
    );
  });
});
