import { botMessage } from "./payloads.js";
import type { RouteContext, Routes } from "./restRoutes.js";
import type { FakeResponse, RecordedRequest } from "./types.js";

/** A channel's reactions, typing, and messages: read, post, edit, delete. */
export const channelRoutes: Routes = (request, body, context) => {
  const { method, path } = request;
  if (method === "PUT" && /^\/channels\/\d+\/messages\/\d+\/reactions\/[^/]+\/@me$/.test(path)) {
    return { status: 204 };
  }
  if (method === "POST" && /^\/channels\/\d+\/typing$/.test(path)) return { status: 204 };
  const channel = path.match(/^\/channels\/(\d+)\/messages$/);
  if (channel) return channelMessagesRoute(request, body, context, channel[1] ?? "");
  const message = path.match(/^\/channels\/(\d+)\/messages\/(\d+)$/);
  if (message) return messageRoute(request, body, context, message);
  return undefined;
};

/** GET: the channel's latest messages, newest first. POST: the bot's new message, which the channel then holds. */
function channelMessagesRoute(
  request: RecordedRequest,
  body: Record<string, unknown>,
  { state }: RouteContext,
  channelId: string,
): FakeResponse | undefined {
  if (request.method === "GET") {
    const limit = Math.min(100, Number(request.query.get("limit") ?? 50));
    const all = state.messagesIn(channelId);
    return { status: 200, body: all.slice(-limit).reverse() };
  }
  if (request.method === "POST") {
    const message = botMessage(state.botUser, channelId, body, state.snowflake());
    state.remember(channelId, message);
    return { status: 200, body: message };
  }
  return undefined;
}

/** PATCH: the edited message. DELETE: 204, and MESSAGE_DELETE to every client; 10008 for one already gone. */
function messageRoute(
  request: RecordedRequest,
  body: Record<string, unknown>,
  { state, messageEvents }: RouteContext,
  match: RegExpMatchArray,
): FakeResponse | undefined {
  if (request.method === "PATCH") {
    // The channel's copy takes the edit, so that a later reply to this message quotes what it now says.
    const held = state.heldMessage(match[1] ?? "", match[2] ?? "");
    if (held && typeof body.content === "string") held.content = body.content;
    return {
      status: 200,
      body: held ?? botMessage(state.botUser, match[1] ?? "", body, match[2] ?? state.snowflake()),
    };
  }
  if (request.method === "DELETE") {
    const [, channelId = "", messageId = ""] = match;
    if (state.deletedMessages.has(messageId)) {
      return { status: 404, body: { message: "Unknown Message", code: 10008 } };
    }
    // Discord tells every client, the bot included, that the message is gone.
    messageEvents.deleteMessage(messageId, channelId);
    return { status: 204 };
  }
  return undefined;
}
