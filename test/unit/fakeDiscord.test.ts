import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeDiscord } from "../../testkit/fakeDiscord.js";

/*
 * The loopback Discord refuses what Discord refuses, so that a bot that passes against it passes against Discord
 * where it matters. These call its REST routes directly, as Discord's documentation describes them.
 */

let discord: FakeDiscord;
beforeAll(async () => {
  discord = await new FakeDiscord().start();
});
afterAll(async () => discord?.stop());

async function call(method: string, path: string, body?: unknown) {
  const response = await fetch(`${discord.apiUrl}/v10${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: "Bot test" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === "" ? {} : JSON.parse(text)) as { code?: number; retry_after?: number },
  };
}

describe("messages", () => {
  it("refuses content over 2000 characters with 50035, and an empty message with 50006", async () => {
    const path = `/channels/${discord.channelId}/messages`;
    expect((await call("POST", path, { content: "x".repeat(2001) })).body.code).toBe(50035);
    expect((await call("POST", path, { content: "" })).body.code).toBe(50006);
    expect((await call("POST", path, {})).body.code).toBe(50006);
    expect((await call("POST", path, { content: "x".repeat(2000) })).status).toBe(200);
  });

  it("refuses the same in edits and interaction replies", async () => {
    const path = `/channels/${discord.channelId}/messages/${discord.snowflake()}`;
    expect((await call("PATCH", path, { content: "x".repeat(2001) })).body.code).toBe(50035);
    expect((await call("PATCH", path, { content: "" })).body.code).toBe(50006);
    const { id, token } = discord.sendSlashCommand({ name: "help" });
    const reply = await call("POST", `/interactions/${id}/${token}/callback`, {
      type: 4,
      data: { content: "" },
    });
    expect(reply.body.code).toBe(50006);
  });
});

describe("interactions", () => {
  it("accepts one response within the deadline, and refuses a second with 40060", async () => {
    const { id, token } = discord.sendSlashCommand({ name: "help" });
    const path = `/interactions/${id}/${token}/callback`;
    expect((await call("POST", path, { type: 5 })).status).toBe(204);
    expect((await call("POST", path, { type: 5 })).body.code).toBe(40060);
  });

  it("refuses a response after the deadline with 10062, and a dead token's edits with 50027", async () => {
    discord.interactionDeadlineMs = 0;
    discord.interactionTokenLifetimeMs = 0;
    try {
      const { id, token } = discord.sendSlashCommand({ name: "help" });
      await new Promise((resolve) => setTimeout(resolve, 5));
      expect((await call("POST", `/interactions/${id}/${token}/callback`, { type: 5 })).body.code).toBe(
        10062,
      );
      const edit = await call("PATCH", `/webhooks/${discord.applicationId}/${token}/messages/@original`, {
        content: "late",
      });
      expect(edit.body.code).toBe(50027);
    } finally {
      discord.interactionDeadlineMs = 3_000;
      discord.interactionTokenLifetimeMs = 15 * 60_000;
    }
  });
});

describe("rate limits", () => {
  it("buckets reactions per channel, with Discord's headers and a 429 that says when to retry", async () => {
    const reaction = (channelId: string) =>
      call("PUT", `/channels/${channelId}/messages/${discord.snowflake()}/reactions/%F0%9F%98%84/@me`);
    const first = await reaction(discord.channelId);
    expect(first.status).toBe(204);
    expect(first.headers.get("x-ratelimit-remaining")).toBe("0");
    expect(Number(first.headers.get("x-ratelimit-reset-after"))).toBeGreaterThan(0);
    const second = await reaction(discord.channelId);
    expect(second.status).toBe(429);
    expect(second.body.retry_after).toBeGreaterThan(0);
    expect(second.headers.get("x-ratelimit-scope")).toBe("user");
    // Another channel has its own bucket.
    expect((await reaction(discord.secondChannelId)).status).toBe(204);
  });
});

describe("deletes and moderation", () => {
  it("deletes a message once, telling the bot, and refuses a second delete with 10008", async () => {
    const posted = await call("POST", `/channels/${discord.channelId}/messages`, { content: "to delete" });
    const id = (posted.body as { id?: string }).id ?? "";
    const path = `/channels/${discord.channelId}/messages/${id}`;
    expect((await call("DELETE", path)).status).toBe(204);
    const again = await call("DELETE", path);
    expect([again.status, again.body.code]).toEqual([404, 10008]);
  });

  it("refuses to time out a member above the bot with 50013, and answers an unknown route with 404", async () => {
    const member = discord.snowflake();
    const path = `/guilds/${discord.guildId}/members/${member}`;
    const until = new Date(Date.now() + 60_000).toISOString();
    expect((await call("PATCH", path, { communication_disabled_until: until })).status).toBe(200);
    discord.membersAboveBot.add(member);
    const refused = await call("PATCH", path, { communication_disabled_until: until });
    expect([refused.status, refused.body.code]).toEqual([403, 50013]);
    expect((await call("GET", `/guilds/${discord.guildId}/bans`)).status).toBe(404);
  });
});
