import { isOutcomeEnvelope, type Outcome, type OutcomeEnvelope, portable } from "../outcomes/outcomes.js";

/** This process's IPC end toward its parent: `process` itself, whose `send` exists only with an IPC channel. */
export interface ParentChannel {
  readonly connected: boolean;
  readonly send?: (
    message: OutcomeEnvelope,
    sendHandle: undefined,
    options: Record<string, never>,
    callback: (error: Error | null) => void,
  ) => boolean;
  once(event: "disconnect", listener: () => void): unknown;
}

/**
 * The command-line flag that asks `npm start` or `npm run start:sharded` to tell its parent every outcome over IPC
 * (tests pass it; so may a supervisor). Without it nothing is sent: each outcome would cost an IPC message, reply
 * text included, that no parent reads.
 */
export const FORWARD_OUTCOMES_FLAG = "--forward-outcomes";

/** How long an exiting process waits for its outcomes to leave: a parent that stops reading cannot hold it. */
const SENT_TIMEOUT_MS = 2_000;

/**
 * Outcomes on their way to the parent process (a test, `npm run start:sharded`, a supervisor), when there is one.
 * IPC sends are asynchronous and `process.exit` drops the ones still queued, so a process that exits waits for
 * `sent()` first: the outcomes of the work a shutdown interrupted still arrive.
 */
export class ParentLink {
  private inFlight = 0;
  private readonly drained: Array<() => void> = [];

  constructor(private readonly channel: ParentChannel) {
    // A parent that went away takes what was still queued with it: nothing is left to wait for.
    channel.once("disconnect", () => this.settle());
  }

  /** Sends one of this process's outcomes. */
  sendOutcome(outcome: Outcome): void {
    this.send({ moodbotOutcome: portable(outcome) });
  }

  /** Passes on an outcome a child process sent (a shard child's); anything else a child sends is not ours. */
  relay(message: unknown): void {
    if (isOutcomeEnvelope(message)) this.send(message);
  }

  /**
   * Resolves once everything sent so far has been written to the channel, or the parent has gone, or after
   * `timeoutMs` at the most.
   */
  sent(timeoutMs = SENT_TIMEOUT_MS): Promise<void> {
    if (this.inFlight === 0 || !this.channel.connected) return Promise.resolve();
    return new Promise((resolve) => {
      const late = setTimeout(resolve, timeoutMs);
      late.unref();
      this.drained.push(() => {
        clearTimeout(late);
        resolve();
      });
    });
  }

  private send(envelope: OutcomeEnvelope): void {
    const { send } = this.channel;
    if (!send || !this.channel.connected) return;
    this.inFlight++;
    const done = () => {
      this.inFlight--;
      if (this.inFlight === 0) this.settle();
    };
    try {
      // The callback runs once the message is written, or with the error when the parent went away.
      send.call(this.channel, envelope, undefined, {}, done);
    } catch {
      // A message that cannot be serialised never leaves: it is not waited for. Outcomes are plain JSON, so
      // only a parent that went away between the check above and the send gets here.
      done();
    }
  }

  private settle(): void {
    for (const resolve of this.drained.splice(0)) resolve();
  }
}
