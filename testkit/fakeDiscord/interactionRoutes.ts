import { botMessage } from "./payloads.js";
import type { Routes } from "./restRoutes.js";

/**
 * An interaction's first response (the callback), its edits and follow-ups (the interaction webhook), and the
 * application's command registrations. The checks have already held the token to Discord's deadlines.
 */
export const interactionRoutes: Routes = (request, body, { state }) => {
  const { method, path } = request;
  const callback = path.match(/^\/interactions\/(\d+)\/[^/]+\/callback$/);
  if (method === "POST" && callback) {
    if (request.query.get("with_response") !== "true") return { status: 204 };
    return {
      status: 200,
      body: { interaction: { id: callback[1], type: 2 }, resource: { type: body.type } },
    };
  }
  if (method === "PATCH" && /^\/webhooks\/\d+\/[^/]+\/messages\/(@original|\d+)$/.test(path)) {
    return { status: 200, body: botMessage(state.botUser, state.channelId, body, state.snowflake()) };
  }
  if (method === "POST" && /^\/webhooks\/\d+\/[^/]+$/.test(path)) {
    return { status: 200, body: botMessage(state.botUser, state.channelId, body, state.snowflake()) };
  }
  if (method === "PUT" && /^\/applications\/\d+(\/guilds\/\d+)?\/commands$/.test(path)) {
    const commands = Array.isArray(request.body) ? request.body : [];
    return {
      status: 200,
      body: commands.map((command: Record<string, unknown>) => ({
        ...command,
        id: state.snowflake(),
        application_id: state.applicationId,
        version: state.snowflake(),
      })),
    };
  }
  return undefined;
};
