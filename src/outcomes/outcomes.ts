import type { SentimentLabel } from "../platform/sentimentLabels.js";

/*
 * What the bot did about an event, told where the work is done (after the reaction's PUT, after the reply's last
 * edit, after the store's write), not beside a log line. Tests subscribe to it, and a child process forwards it to
 * its parent over IPC; nothing in the bot reads it back, so a listener can never change what the bot does.
 */

/** The ids an outcome about one Discord message carries. */
export interface MessageRef {
  readonly messageId: string;
  readonly channelId: string;
  readonly guildId: string | null;
  readonly shardId: number;
}

/** Work the bot does for a message. */
export type MessageJob = "message" | "reaction" | "reply" | "moderation";

export type Outcome =
  /** A mood reaction is on the message: Discord accepted the PUT. */
  | (MessageRef & {
      readonly kind: "reacted";
      readonly label: SentimentLabel;
      readonly emoji: string;
      readonly confidence: number;
      readonly cached: boolean;
    })
  /**
   * A job was decided against before any model work: the whole message (`job: "message"`, from a bot, a
   * denylisted channel, …), its reaction (opted out, reactions off, no emoji for the label, …) or its moderation.
   */
  | (MessageRef & {
      readonly kind: "skipped";
      readonly job: MessageJob;
      readonly reason: string;
      /** The label measured, when the reaction was skipped after the pass (no emoji for it). */
      readonly label?: SentimentLabel;
    })
  /** The scheduler dropped queued work: overload, waiting too long, or shutdown. */
  | (MessageRef & { readonly kind: "shed"; readonly job: MessageJob; readonly reason: string })
  /** A mention was refused before any model work (rate limits, a busy channel); `notified` when told so. */
  | (MessageRef & { readonly kind: "refused"; readonly reason: string; readonly notified: boolean })
  /** A mention waits behind others in its channel. */
  | (MessageRef & { readonly kind: "queued"; readonly position: number })
  /**
   * A reply is posted in full: `messages` Discord messages hold `reply`. `historyTurns` is how many of the
   * channel's earlier turns the model's prompt held (0 when the model was not asked).
   */
  | (MessageRef & {
      readonly kind: "replied";
      readonly reply: string;
      readonly messages: number;
      readonly fromModel: boolean;
      readonly historyTurns: number;
    })
  /** A job failed; for a reply, `cutShort` says the words so far stayed, marked as cut short. */
  | (MessageRef & {
      readonly kind: "failed";
      readonly job: MessageJob;
      readonly cutShort: boolean;
      readonly error: unknown;
    })
  /** A moderation check ran; `alerted` when an alert was posted for it. */
  | (MessageRef & {
      readonly kind: "moderated";
      readonly label: string;
      readonly confidence: number;
      readonly alerted: boolean;
      /** Why no alert was posted although the label called for one (dry-run aside: dry-run posts). */
      readonly notAlertedReason?: string;
    })
  /**
   * Turns of a conversation reached the channel's history: written to the store, or buffered in memory while the
   * store is away. `interrupted` for a reply that stopped midway.
   */
  | {
      readonly kind: "stored";
      readonly channelId: string;
      readonly messageId: string | null;
      readonly turns: number;
      readonly interrupted: boolean;
    }
  /** Stored data was deleted: a member's (`/privacy delete`), a message's turns, a channel's or a server's. */
  | {
      readonly kind: "deleted";
      readonly scope: "member" | "messages" | "channel" | "guild";
      readonly id: string;
    }
  /** A server's data was kept on purpose: it went unavailable in a Discord outage, which is no removal. */
  | { readonly kind: "kept"; readonly scope: "guild"; readonly id: string; readonly reason: "outage" }
  /**
   * A prompt reload is in force: the model holds the new prefixes (`sentimentPrefixTokens` long) and the bot
   * serves `tasks`. `commands` says what Discord was told; `needRestart` names label tasks left for a restart.
   */
  | {
      readonly kind: "reloaded";
      readonly trigger: "SIGHUP" | "file change";
      readonly tasks: readonly string[];
      readonly sentimentPrefixTokens: number;
      readonly commands: string;
      readonly needRestart: readonly string[];
    }
  /** A prompt reload was refused (a bad file, named when known): the previous prompts stay in force. */
  | {
      readonly kind: "reloadRefused";
      readonly trigger: "SIGHUP" | "file change";
      readonly file?: string;
    };

export type OutcomeKind = Outcome["kind"];
export type OutcomeOf<K extends OutcomeKind> = Extract<Outcome, { kind: K }>;
export type OutcomeListener = (outcome: Outcome) => void;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** Tells the hook what became of one message: the outcome without the message's ids, which it adds. */
export type TellOutcome = (outcome: DistributiveOmit<Extract<Outcome, MessageRef>, keyof MessageRef>) => void;

/**
 * The outcome hook: a typed fan-out with no buffering. A listener that throws is reported to `onListenerError`
 * and never reaches the code that emitted the outcome.
 */
export class Outcomes {
  private readonly listeners = new Set<OutcomeListener>();

  constructor(private readonly onListenerError: (error: unknown) => void) {}

  /** Calls `listener` with every outcome from now on; the function returned unsubscribes. */
  subscribe(listener: OutcomeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** A teller for one message's jobs. */
  about(ref: MessageRef): TellOutcome {
    return (outcome) => this.emit({ ...ref, ...outcome } as Outcome);
  }

  emit(outcome: Outcome): void {
    for (const listener of this.listeners) {
      try {
        listener(outcome);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }
}

/** An outcome as it crosses a process boundary: plain JSON, a failure's error reduced to its name and message. */
export type PortableOutcome =
  | Exclude<Outcome, { kind: "failed" }>
  | (Omit<OutcomeOf<"failed">, "error"> & {
      readonly error: { readonly name: string; readonly message: string };
    });

/** The envelope an outcome travels in over IPC, so that a parent can tell it from discord.js's own messages. */
export interface OutcomeEnvelope {
  readonly moodbotOutcome: PortableOutcome;
}

export function portable(outcome: Outcome): PortableOutcome {
  if (outcome.kind !== "failed") return outcome;
  const { error } = outcome;
  return {
    ...outcome,
    error:
      error instanceof Error
        ? { name: error.name, message: error.message }
        : { name: "NonError", message: String(error) },
  };
}

export function isOutcomeEnvelope(message: unknown): message is OutcomeEnvelope {
  return typeof message === "object" && message !== null && "moodbotOutcome" in message;
}
