import type { Message } from "discord.js";
import type { Logger } from "../platform/logger.js";
import { outgoingMessages } from "./send.js";

/**
 * A reply that appears while the model writes it. The first message is posted as soon as there is text (replying
 * to the user's message), then edited at most once per `editIntervalMs`; text past 2000 characters continues in
 * new messages, with code fences closed and reopened at the cuts. `finish` makes every message hold its final part
 * of the full text. All Discord calls run one after another, in order.
 */
export class StreamingReply {
  private readonly sent: Message[] = [];
  private readonly shown: string[] = [];
  private latest = "";
  private timer: NodeJS.Timeout | undefined;
  /** When the last render started: renders are at least one interval apart, the final one included. */
  private lastRender = Number.NEGATIVE_INFINITY;
  private queue: Promise<void> = Promise.resolve();
  private failure: unknown;

  constructor(
    private readonly message: Message,
    private readonly options: {
      readonly editIntervalMs: number;
      readonly log: Logger;
      readonly onFirstText?: () => void;
    },
  ) {}

  /** Takes the whole text generated so far. */
  update(rawText: string): void {
    this.latest = rawText;
    if (this.timer || this.failure !== undefined) return;
    const wait = Math.max(0, this.lastRender + this.options.editIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.enqueue(() => this.render(this.latest));
    }, wait);
  }

  /**
   * Ends a reply that will not be finished (shutdown, an error): what was already shown stays, with `marker`
   * below it, in one last edit. Returns false, and shows nothing, when no text had been shown yet.
   */
  async cutShort(marker: string): Promise<boolean> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    // Whatever render is still queued finishes first: the first message may be on its way.
    await this.queue;
    if (this.sent.length === 0 || this.failure !== undefined) {
      this.cancel();
      return false;
    }
    await this.finish(`${this.latest.trimEnd()}\n-# ${marker}`);
    return true;
  }

  /** Stops any pending render: for a reply that will not be finished. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.failure ??= new Error("the reply was cancelled");
  }

  /** Shows the final text (never empty: pass the bot's own notice when the model said nothing). */
  async finish(finalText: string): Promise<Message[]> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.enqueue(() => this.render(finalText, true));
    await this.queue;
    if (this.failure !== undefined) throw this.failure;
    return [...this.sent];
  }

  private enqueue(work: () => Promise<void>): void {
    this.queue = this.queue.then(async () => {
      if (this.failure !== undefined) return;
      try {
        await work();
      } catch (error) {
        // The first failure stops the stream; finish() reports it to the caller's one error path.
        this.failure = error;
      }
    });
  }

  private async render(rawText: string, final = false): Promise<void> {
    const wait = this.lastRender + this.options.editIntervalMs - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    this.lastRender = Date.now();
    const chunks = outgoingMessages(rawText);
    if (chunks.length === 0) return;
    for (const [index, content] of chunks.entries()) {
      const existing = this.sent[index];
      if (!existing) {
        const posted = index === 0 ? await this.message.reply({ content }) : await this.send(content);
        if (!posted) return;
        this.sent.push(posted);
        this.shown.push(content);
        if (index === 0) this.options.onFirstText?.();
      } else if (this.shown[index] !== content) {
        await existing.edit({ content });
        this.shown[index] = content;
      }
    }
    if (final) {
      // The final text can be shorter than what streamed (a <think> block closed late): drop the leftovers.
      for (const extra of this.sent.splice(chunks.length)) {
        this.shown.pop();
        await extra.delete();
      }
    }
  }

  private async send(content: string): Promise<Message | undefined> {
    const channel = this.message.channel;
    if (!channel.isSendable()) {
      this.options.log.warn("cannot continue the reply: the channel does not accept messages");
      return undefined;
    }
    return channel.send({ content });
  }
}
