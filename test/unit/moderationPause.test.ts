import { expect, it } from "vitest";
import { ModerationPause, PAUSE_NOTICE_GAP_MS } from "../../src/discord/moderationPause.js";

/** A clock the test moves by hand. */
function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

it("tells a server once that moderation paused, however many checks fail, and once that it resumed", () => {
  const time = clock();
  const pause = new ModerationPause(PAUSE_NOTICE_GAP_MS, time.now);
  expect(pause.resumed("guild")).toBe(false);
  expect(pause.paused("guild")).toBe(true);
  expect(pause.paused("guild")).toBe(false);
  expect(pause.paused("guild")).toBe(false);
  time.advance(PAUSE_NOTICE_GAP_MS);
  expect(pause.resumed("guild")).toBe(true);
  expect(pause.resumed("guild")).toBe(false);
  // A new outage is told again at once.
  expect(pause.paused("guild")).toBe(true);
});

it("each server is told on its own", () => {
  const pause = new ModerationPause(0);
  expect(pause.paused("a")).toBe(true);
  expect(pause.paused("b")).toBe(true);
  expect(pause.resumed("a")).toBe(true);
  expect(pause.paused("b")).toBe(false);
  expect(pause.resumed("b")).toBe(true);
});

it("a flapping server: the resume waits for the gap, so its moderators never believe checks run while they do not", () => {
  const time = clock();
  const pause = new ModerationPause(PAUSE_NOTICE_GAP_MS, time.now);
  expect(pause.paused("guild")).toBe(true);
  time.advance(60_000);
  // Back after a minute: not told yet, so the moderators still (rightly) believe it may be paused ...
  expect(pause.resumed("guild")).toBe(false);
  // ... and the next failure needs no new notice.
  expect(pause.paused("guild")).toBe(false);
  time.advance(PAUSE_NOTICE_GAP_MS - 60_001);
  expect(pause.resumed("guild")).toBe(false);
  time.advance(1);
  expect(pause.resumed("guild")).toBe(true);
});
