import { describe, expect, it } from "vitest";
import { ChatPool } from "../../src/llm/inProcess/chatPool.js";
import type { GenerationOwner } from "../../src/llm/inProcess/passModel.js";

// The pool only hands sequences out; named strings stand in for the chat runners.
const pool = (size: number) => new ChatPool(Array.from({ length: size }, (_, i) => `seq${i}`));
const channel = (key: string): GenerationOwner => ({ kind: "conversation", key });
const task = (key: string): GenerationOwner => ({ kind: "task", key });

describe("ChatPool: conversations", () => {
  it("gives a channel's follow-up its own warm sequence back, after another channel spoke", () => {
    const chat = pool(2);
    const cats = chat.tryLease(channel("cats"));
    cats?.release();
    chat.tryLease(channel("dogs"))?.release();
    expect(chat.tryLease(channel("cats"))?.runner).toBe(cats?.runner);
  });

  it("makes a channel wait while its sequence generates, even with another one free", () => {
    const chat = pool(2);
    const first = chat.tryLease(channel("cats"));
    expect(chat.tryLease(channel("cats"))).toBeUndefined();
    first?.release();
    expect(chat.tryLease(channel("cats"))?.runner).toBe(first?.runner);
  });

  it("gives a new channel an unused sequence first, then the least recently used idle one", () => {
    const chat = pool(2);
    const a = chat.tryLease(channel("a"));
    const b = chat.tryLease(channel("b"));
    expect(b?.runner).not.toBe(a?.runner);
    expect(chat.tryLease(channel("c"))).toBeUndefined();
    b?.release();
    a?.release();
    // a was leased before b: its sequence goes, and b stays warm.
    expect(chat.tryLease(channel("c"))?.runner).toBe(a?.runner);
    expect(chat.tryLease(channel("b"))?.runner).toBe(b?.runner);
  });
});

describe("ChatPool: text tasks", () => {
  it("runs two tasks of one kind side by side, each on its own sequence", () => {
    const chat = pool(3);
    const first = chat.tryLease(task("summarize"));
    const second = chat.tryLease(task("summarize"));
    expect(second).toBeDefined();
    expect(second?.runner).not.toBe(first?.runner);
  });

  it("prefers the sequence a task warmed before, over one never used", () => {
    const chat = pool(3);
    const first = chat.tryLease(task("summarize"));
    first?.release();
    expect(chat.tryLease(task("summarize"))?.runner).toBe(first?.runner);
  });

  it("never holds the last sequence: a mention always finds one no task holds", () => {
    const chat = pool(2);
    const summary = chat.tryLease(task("summarize"));
    expect(summary).toBeDefined();
    expect(chat.tryLease(task("keywords"))).toBeUndefined();
    expect(chat.tryLease(channel("cats"))).toBeDefined();
    summary?.release();
    expect(chat.tryLease(task("keywords"))).toBeDefined();
  });

  it("shares a single sequence with conversations, one at a time", () => {
    const chat = pool(1);
    const summary = chat.tryLease(task("summarize"));
    expect(summary).toBeDefined();
    expect(chat.tryLease(channel("cats"))).toBeUndefined();
    summary?.release();
    expect(chat.tryLease(channel("cats"))).toBeDefined();
    // A stale lease released again gives back nothing: the sequence stays the channel's while it generates.
    summary?.release();
    expect(chat.tryLease(task("summarize"))).toBeUndefined();
  });

  it("keeps a task's name apart from a channel's key", () => {
    const chat = pool(2);
    chat.tryLease(task("42"));
    // The channel "42" has no sequence of its own yet: it takes the free one rather than waiting for the task.
    expect(chat.tryLease(channel("42"))).toBeDefined();
  });
});
