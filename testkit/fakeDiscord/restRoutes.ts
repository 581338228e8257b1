import { channelRoutes } from "./channelRoutes.js";
import { guildRoutes } from "./guildRoutes.js";
import { interactionRoutes } from "./interactionRoutes.js";
import type { MessageEvents } from "./messageEvents.js";
import { userPayload } from "./payloads.js";
import type { DiscordState } from "./state.js";
import type { FakeDiscordSettings, FakeResponse, RecordedRequest } from "./types.js";

/** What a route may read and change: the shared state, the test's knobs, and the events a route makes Discord send. */
export interface RouteContext {
  readonly state: DiscordState;
  readonly settings: FakeDiscordSettings;
  readonly messageEvents: Pick<MessageEvents, "deleteMessage">;
  readonly gatewayUrl: () => string;
}

/**
 * One resource's routes: the response for a request it serves, or undefined for one it does not. `body` is the
 * request's JSON (or multipart payload_json), or an empty object.
 */
export type Routes = (
  request: RecordedRequest,
  body: Record<string, unknown>,
  context: RouteContext,
) => FakeResponse | undefined;

/** The routes the bot uses once it is past the checks, by resource; anything else is a 404, as on Discord. */
export function route(request: RecordedRequest, context: RouteContext): FakeResponse {
  const body = (request.body ?? {}) as Record<string, unknown>;
  for (const routes of [botRoutes, channelRoutes, guildRoutes, interactionRoutes]) {
    const response = routes(request, body, context);
    if (response) return response;
  }
  const { method, path } = request;
  return { status: 404, body: { message: `Unknown route ${method} ${path}`, code: 0 } };
}

/** Where discord.js starts: the gateway to connect to, and who the bot is. */
const botRoutes: Routes = ({ method, path }, _body, { state, settings, gatewayUrl }) => {
  if (method === "GET" && path === "/gateway/bot") {
    return {
      status: 200,
      body: {
        url: gatewayUrl(),
        shards: settings.recommendedShards,
        session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 },
      },
    };
  }
  if (method === "GET" && path === "/users/@me") return { status: 200, body: userPayload(state.botUser) };
  return undefined;
};
