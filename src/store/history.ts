import { z } from "zod";
import type { Logger } from "../logger.js";
import type { TurnLog } from "./turnLog.js";

export interface HistoryTurn {
  readonly role: "user" | "assistant";
  readonly text: string;
  /** The speaker's display name, for user turns. */
  readonly author?: string;
  readonly at: number;
}

const turnSchema = z.object({
  role: z.enum(["user", "assistant"]),
  text: z.string(),
  author: z.string().optional(),
  at: z.number(),
});
const historySchema = z.array(turnSchema);

/**
 * Per-channel conversation turns, newest last, capped at `maxTurns`, validated on the way out. Appends go through
 * the store's turn log, which never loses a turn another writer appended.
 */
export class HistoryStore {
  constructor(
    private readonly turns: TurnLog,
    private readonly maxTurns: number,
    private readonly logger: Logger,
  ) {}

  async get(channelId: string): Promise<HistoryTurn[]> {
    const raw = await this.turns.read(channelId);
    if (raw === undefined) return [];
    const parsed = historySchema.safeParse(raw);
    if (parsed.success) return parsed.data.map(withoutUndefined).slice(-this.maxTurns);
    this.logger.warn({ channelId, issues: parsed.error.issues.length }, "ignoring malformed channel history");
    return [];
  }

  /** Appends turns to a channel's history, keeping the newest `maxTurns`. */
  append(channelId: string, turns: readonly HistoryTurn[]): Promise<void> {
    return this.turns.append(channelId, turns, this.maxTurns);
  }

  clear(channelId: string): Promise<void> {
    return this.turns.clear(channelId);
  }
}

function withoutUndefined(turn: z.infer<typeof turnSchema>): HistoryTurn {
  return turn.author === undefined
    ? { role: turn.role, text: turn.text, at: turn.at }
    : { role: turn.role, text: turn.text, author: turn.author, at: turn.at };
}
