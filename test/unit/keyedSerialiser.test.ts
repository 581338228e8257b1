import { describe, expect, it } from "vitest";
import { KeyedSerialiser } from "../../src/platform/keyedSerialiser.js";

/** A promise the test settles itself, so that no piece of work depends on timing. */
function deferred<T = void>() {
  let resolve: (value: T) => void = () => {};
  let reject: (error: Error) => void = () => {};
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

describe("KeyedSerialiser", () => {
  it("runs one key's work one piece at a time, in the order it was started, and other keys beside it", async () => {
    const serialiser = new KeyedSerialiser();
    const started: string[] = [];
    const gates = { a1: deferred(), a2: deferred(), b1: deferred() };
    const piece = (name: keyof typeof gates) => async () => {
      started.push(name);
      await gates[name].promise;
      return name;
    };
    const a1 = serialiser.run("a", piece("a1"));
    const a2 = serialiser.run("a", piece("a2"));
    const b1 = serialiser.run("b", piece("b1"));
    // Another key does not wait for "a"; the second piece of "a" waits for the first.
    await expect.poll(() => started).toEqual(["a1", "b1"]);
    gates.b1.resolve();
    expect(await b1).toBe("b1");
    expect(started).toEqual(["a1", "b1"]);
    gates.a1.resolve();
    expect(await a1).toBe("a1");
    await expect.poll(() => started).toEqual(["a1", "b1", "a2"]);
    gates.a2.resolve();
    expect(await a2).toBe("a2");
  });

  it("gives a failure to its own caller, and the next piece of the key still runs", async () => {
    const serialiser = new KeyedSerialiser();
    const failing = serialiser.run("a", async () => {
      throw new Error("the first piece failed");
    });
    const thrownAtOnce = serialiser.run("a", () => {
      throw new Error("thrown before any promise");
    });
    const next = serialiser.run("a", async () => "the next piece ran");
    await expect(failing).rejects.toThrow("the first piece failed");
    await expect(thrownAtOnce).rejects.toThrow("thrown before any promise");
    expect(await next).toBe("the next piece ran");
  });

  it("lets a reader wait for the work of its keys started before it, and not for work started after", async () => {
    const serialiser = new KeyedSerialiser();
    const events: string[] = [];
    const before = deferred();
    const other = deferred();
    void serialiser.run("a", async () => {
      await before.promise;
      events.push("a before the reader");
    });
    void serialiser.run("b", () => other.promise);
    const reader = serialiser.settled(["a", "a", "never used"]).then(() => events.push("reader"));
    const after = deferred();
    const later = serialiser.run("a", async () => {
      await after.promise;
      events.push("a after the reader");
    });
    before.resolve();
    // "b" is still running and the later piece of "a" has not finished: the reader does not wait for either.
    await reader;
    expect(events).toEqual(["a before the reader", "reader"]);
    after.resolve();
    await later;
    other.resolve();
    await expect.poll(() => serialiser.busyKeys).toBe(0);
  });

  it("keeps nothing for a key once its work has settled", async () => {
    const serialiser = new KeyedSerialiser();
    await Promise.all(Array.from({ length: 50 }, (_, i) => serialiser.run(`k${i % 5}`, async () => i)));
    await expect.poll(() => serialiser.busyKeys).toBe(0);
  });
});
