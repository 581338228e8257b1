import { ParentLink } from "../src/assembly/parentLink.js";
import type { Outcome } from "../src/outcomes/outcomes.js";

/**
 * A process that sends its parent N outcomes over IPC through ParentLink, then exits at once, as a shutting-down
 * bot does once `sent()` has resolved: the parent counts what arrived.
 * Usage: node --import tsx testkit/outcomeSender.ts <N>
 */
const count = Number(process.argv[2] ?? "0");
const parent = new ParentLink(process);
for (let index = 0; index < count; index++) {
  const outcome: Outcome = {
    kind: "replied",
    messageId: String(index),
    channelId: "1",
    guildId: null,
    shardId: 0,
    // A long reply, as a cut-short story is: enough bytes that the sends queue up behind each other.
    reply: "lorem ".repeat(300),
    messages: 1,
    fromModel: true,
    historyTurns: 0,
  };
  parent.sendOutcome(outcome);
}
await parent.sent(60_000);
process.exit(0);
