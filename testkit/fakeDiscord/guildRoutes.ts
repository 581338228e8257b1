import { memberPayload, userPayload } from "./payloads.js";
import type { Routes } from "./restRoutes.js";

/** A guild's members: PATCH times one out (or lifts it), unless the member's highest role is above the bot's. */
export const guildRoutes: Routes = (request, body, { state }) => {
  const match = request.path.match(/^\/guilds\/(\d+)\/members\/(\d+)$/);
  if (request.method !== "PATCH" || !match) return undefined;
  // Discord refuses to act on a member whose highest role is above the bot's.
  if (state.membersAboveBot.has(match[2] ?? "")) {
    return { status: 403, body: { message: "Missing Permissions", code: 50013 } };
  }
  return {
    status: 200,
    body: {
      ...memberPayload(),
      user: userPayload({ id: match[2] ?? "", username: "member" }),
      communication_disabled_until: body.communication_disabled_until ?? null,
    },
  };
};
