import type { LlamaContext } from "node-llama-cpp";
import { ChatRunner } from "./chat.js";

/**
 * Chat sequences kept warm per channel: each recently active channel keeps its own sequence, whose evaluated
 * tokens LlamaChat reuses, so a follow-up evaluates only the new turns. The least recently used channel gives its
 * sequence up to a new one. Jobs reach it one at a time through the scheduler, so no locking is needed.
 */
export class ChatPool {
  private readonly byChannel = new Map<string, ChatRunner>();
  private readonly free: ChatRunner[] = [];

  constructor(context: LlamaContext, size: number) {
    for (let i = 0; i < size; i++) this.free.push(new ChatRunner(context.getSequence()));
  }

  /** Any runner, for what every runner shares (the chat wrapper). */
  get any(): ChatRunner {
    const runner = this.free[0] ?? this.byChannel.values().next().value;
    if (!runner) throw new Error("the chat pool has no sequences");
    return runner;
  }

  /** The runner that last served this channel, or the least recently used one. */
  acquire(channelKey: string): ChatRunner {
    let runner = this.byChannel.get(channelKey);
    if (runner) {
      this.byChannel.delete(channelKey);
    } else {
      runner = this.free.pop();
      if (!runner) {
        const [oldestKey, oldest] = this.byChannel.entries().next().value ?? [];
        if (oldestKey === undefined || !oldest) throw new Error("the chat pool has no sequences");
        this.byChannel.delete(oldestKey);
        runner = oldest;
      }
    }
    // Map order is recency order: the channel just used goes last.
    this.byChannel.set(channelKey, runner);
    return runner;
  }

  dispose(): void {
    for (const runner of [...this.free, ...this.byChannel.values()]) runner.dispose();
  }
}
