import { afterAll, beforeAll, expect, it } from "vitest";
import { WORDING } from "../../src/wording/wording.js";
import { FakeDiscord, type FakeUser, type RecordedRequest } from "../../testkit/fakeDiscord.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

const body = (request: RecordedRequest | undefined) => (request?.body ?? {}) as Record<string, unknown>;
const originalOf = (token: string) => new RegExp(`/${token}/messages/@original$`);
const en = WORDING.en.moderation;

interface Alert {
  readonly id: string;
  readonly embeds: Array<{
    title: string;
    footer?: { text: string };
    fields: Array<{ name: string; value: string }>;
  }>;
  readonly components: Array<{ components: Array<{ custom_id: string }> }>;
  readonly allowed_mentions: unknown;
}

let h: BotHarness;
let covered: string;
let uncovered: string;
let alertChannel: string;

beforeAll(async () => {
  h = await startBotHarness({
    // The toxicity labels as whole tokens, the model favouring "insult": every check says insult, confidently.
    model: { favouredToken: "insult", extraWords: ["ok", "insult", "threat", "harassment", "spam"] },
    withTasks: true,
    channels: 3,
    env: { LLM_CONTEXT_SIZE: "4096", MODERATION_ALERTS_PER_HOUR: "1000" },
  });
  const [first = "", second = "", third = ""] = h.discord.guilds[0]?.channelIds ?? [];
  [covered, uncovered, alertChannel] = [first, second, third];
});
afterAll(async () => h?.close());

/** Runs /settings moderation with options and returns the private answer. */
async function setUp(options: Record<string, unknown>, permissions?: string): Promise<string> {
  options = { "alert-channel": alertChannel, ...options };
  const types: Record<string, number> = { mode: 3, threshold: 10, "bypass-role": 8, "unbypass-role": 8 };
  const { token } = h.discord.sendSlashCommand({
    name: "settings",
    options: [
      {
        name: "moderation",
        type: 1,
        options: Object.entries(options).map(([name, value]) => ({ name, type: types[name] ?? 7, value })),
      },
    ],
    ...(permissions === undefined ? {} : { permissions }),
  });
  const [edit] = await h.discord.waitForRequests("PATCH", originalOf(token));
  return String(body(edit).content);
}

/** Waits until the bot has told of an alert about this message, and returns the alert as Discord received it. */
async function alertFor(messageId: string): Promise<Alert> {
  await h.outcomes.next("moderated", { messageId, alerted: true });
  const jumpsTo = (post: RecordedRequest) =>
    (body(post) as unknown as Alert).embeds[0]?.fields.some(
      (field) => field.name === en.jump && field.value.endsWith(`/${messageId}`),
    ) ?? false;
  const posts = h.discord
    .requestsMatching("POST", new RegExp(`^/channels/${alertChannel}/messages$`))
    .filter(jumpsTo);
  expect(posts).toHaveLength(1);
  const [post] = posts as [RecordedRequest];
  return { id: h.discord.postedMessageId(post) ?? "", ...(body(post) as object) } as Alert;
}

const member = (): FakeUser => ({ id: h.discord.snowflake(), username: "troll" });

it("is set up with Manage Server only, and a first setup starts in dry-run", async () => {
  // A server that never set moderation up, whatever the other tests did.
  await h.app.moderation.delete(h.discord.guildId);
  expect(await setUp({}, "0")).toBe(WORDING.en.settings.denied);
  const answer = await setUp({ cover: covered });
  expect(answer).toContain("**Moderation: dry-run**");
  expect(answer).toContain(`<#${covered}>`);
  expect(answer).toContain("still checked");
});

it("dry-run: a covered channel's message gets an alert without buttons that pings no one; others are not checked", async () => {
  await setUp({ mode: "dry-run", cover: covered });
  const elsewhere = h.discord.sendMessage({ content: "you absolute clown", channelId: uncovered });
  expect(await h.outcomes.next("skipped", { messageId: elsewhere, job: "moderation" })).toMatchObject({
    reason: "channel not covered",
  });

  const author = member();
  const id = h.discord.sendMessage({ content: "you absolute clown", channelId: covered, author });
  const alert = await alertFor(id);
  expect(alert.embeds[0]?.title).toBe(en.alertTitle("insult"));
  expect(alert.embeds[0]?.footer?.text).toBe(en.dryRun);
  expect(alert.embeds[0]?.fields).toEqual(
    expect.arrayContaining([
      { name: en.author, value: `<@${author.id}> (troll)`, inline: true },
      { name: en.label, value: "insult", inline: true },
      { name: en.jump, value: `https://discord.com/channels/${h.discord.guildId}/${covered}/${id}` },
    ]),
  );
  expect(alert.components).toEqual([]);
  expect(alert.allowed_mentions).toEqual({ parse: [] });
});

it("checks opted-out members and channels with reactions off: moderation is the server's rule", async () => {
  await setUp({ mode: "dry-run", cover: covered });
  await h.app.settings.set("channel", covered, "reactions", "off");
  const author = member();
  await h.app.privacy.set(author.id, true);
  try {
    const id = h.discord.sendMessage({ content: "nobody likes you", channelId: covered, author });
    expect(await h.outcomes.next("skipped", { messageId: id, job: "message" })).toMatchObject({
      reason: "member opted out",
    });
    const alert = await alertFor(id);
    expect(alert.embeds[0]?.fields).toContainEqual({
      name: en.author,
      value: `<@${author.id}> (troll)`,
      inline: true,
    });
  } finally {
    await h.app.settings.reset("channel", covered, "reactions");
  }
});

it("never checks members with a bypass role", async () => {
  await setUp({ mode: "dry-run", cover: covered, "bypass-role": FakeDiscord.HELPER_ROLE_ID });
  try {
    const id = h.discord.sendMessage({
      content: "mod banter",
      channelId: covered,
      roles: [FakeDiscord.HELPER_ROLE_ID],
    });
    expect(await h.outcomes.next("skipped", { messageId: id, job: "moderation" })).toMatchObject({
      reason: "a bypass role",
    });
  } finally {
    await setUp({ "unbypass-role": FakeDiscord.HELPER_ROLE_ID });
  }
});

it("live: Delete acts only for a member with Manage Messages, with an audit-log reason, and the alert records it", async () => {
  await setUp({ mode: "live", cover: covered });
  const id = h.discord.sendMessage({ content: "get lost loser", channelId: covered, author: member() });
  const alert = await alertFor(id);
  const ids = alert.components[0]?.components.map((button) => button.custom_id) ?? [];
  expect(ids).toEqual([
    `moderation:delete:${covered}:${id}`,
    expect.stringMatching(/^moderation:timeout:\d+$/),
    "moderation:dismiss",
  ]);
  const message = { id: alert.id, embeds: alert.embeds, components: alert.components };
  const deleteId = ids[0] ?? "";

  const refused = h.discord.sendButtonClick({
    customId: deleteId,
    message,
    permissions: "0",
    channelId: alertChannel,
  });
  const [reply] = await h.discord.waitForRequests("POST", new RegExp(`/${refused.token}/callback$`));
  expect(body(reply)).toMatchObject({ type: 4, data: { content: en.needs("Manage Messages"), flags: 64 } });
  expect(h.discord.requestsMatching("DELETE", new RegExp(`/messages/${id}$`))).toEqual([]);

  const click = h.discord.sendButtonClick({ customId: deleteId, message, channelId: alertChannel });
  const [deletion] = await h.discord.waitForRequests(
    "DELETE",
    new RegExp(`^/channels/${covered}/messages/${id}$`),
  );
  expect(deletion?.auditLogReason).toMatch(/^moodbot alert: delete by alice/);
  const [edit] = await h.discord.waitForRequests("PATCH", originalOf(click.token));
  const fields = (body(edit).embeds as Alert["embeds"])[0]?.fields ?? [];
  expect(fields.at(-1)).toEqual({ name: en.action, value: en.deleted("<@100000000000000001>") });
  expect(body(edit).components).toEqual([]);
});

it("live: Timeout sets communication_disabled_until 10 minutes ahead; a member above the bot is refused in plain words", async () => {
  await setUp({ mode: "live", cover: covered });
  const author = member();
  const id = h.discord.sendMessage({ content: "you are trash", channelId: covered, author });
  const alert = await alertFor(id);
  const timeoutId = `moderation:timeout:${author.id}`;
  const message = { id: alert.id, embeds: alert.embeds, components: alert.components };

  h.discord.membersAboveBot.add(author.id);
  const refused = h.discord.sendButtonClick({ customId: timeoutId, message, channelId: alertChannel });
  const [refusal] = await h.discord.waitForRequests("PATCH", originalOf(refused.token));
  const refusedFields = (body(refusal).embeds as Alert["embeds"])[0]?.fields ?? [];
  expect(refusedFields.at(-1)).toEqual({ name: en.action, value: en.refusedRoleOrder });
  // The buttons stay, to try again once the roles are fixed.
  expect(body(refusal).components).toBeUndefined();

  h.discord.membersAboveBot.delete(author.id);
  const before = Date.now();
  const click = h.discord.sendButtonClick({ customId: timeoutId, message, channelId: alertChannel });
  const [patch] = await h.discord.waitForRequests(
    "PATCH",
    new RegExp(`^/guilds/\\d+/members/${author.id}$`),
    2,
  );
  const until = Date.parse(String(body(patch).communication_disabled_until));
  expect(until - before).toBeGreaterThanOrEqual(10 * 60_000 - 1_000);
  expect(until - before).toBeLessThanOrEqual(10 * 60_000 + 5_000);
  expect(patch?.auditLogReason).toMatch(/^moodbot alert: timeout by alice/);
  const [edit] = await h.discord.waitForRequests("PATCH", originalOf(click.token));
  const fields = (body(edit).embeds as Alert["embeds"])[0]?.fields ?? [];
  expect(fields.at(-1)).toEqual({ name: en.action, value: en.timedOut("<@100000000000000001>") });
});

it("live: Dismiss records who dismissed the alert and removes the buttons", async () => {
  await setUp({ mode: "live", cover: covered });
  const id = h.discord.sendMessage({ content: "ugh you again, idiot", channelId: covered, author: member() });
  const alert = await alertFor(id);
  const message = { id: alert.id, embeds: alert.embeds, components: alert.components };
  const click = h.discord.sendButtonClick({
    customId: "moderation:dismiss",
    message,
    channelId: alertChannel,
  });
  const [edit] = await h.discord.waitForRequests("PATCH", originalOf(click.token));
  const fields = (body(edit).embeds as Alert["embeds"])[0]?.fields ?? [];
  expect(fields.at(-1)).toEqual({ name: en.action, value: en.dismissed("<@100000000000000001>") });
  expect(body(edit).components).toEqual([]);
});

it("answers a button it does not know with a private notice, never a silent failure", async () => {
  const click = h.discord.sendButtonClick({ customId: "moderation:ban:1", channelId: alertChannel });
  const [reply] = await h.discord.waitForRequests("POST", new RegExp(`/${click.token}/callback$`));
  expect(body(reply)).toMatchObject({ type: 4, data: { content: WORDING.en.unknownCommand, flags: 64 } });
});

it("posts at most MODERATION_ALERTS_PER_HOUR alerts per channel per hour, and counts the rest", async () => {
  const capped = await startBotHarness({
    model: { favouredToken: "insult", extraWords: ["ok", "insult", "threat", "harassment", "spam"] },
    withTasks: true,
    channels: 3,
    env: { LLM_CONTEXT_SIZE: "4096", MODERATION_ALERTS_PER_HOUR: "1" },
  });
  try {
    const [watched = "", , alerts = ""] = capped.discord.guilds[0]?.channelIds ?? [];
    await capped.app.moderation.set(capped.discord.guildId, {
      mode: "dry-run",
      alertChannelId: alerts,
      channelIds: [watched],
      threshold: 0.8,
      bypassRoleIds: [],
    });
    const first = capped.discord.sendMessage({ content: "you clown", channelId: watched });
    await capped.outcomes.next("moderated", { messageId: first, alerted: true });
    const second = capped.discord.sendMessage({ content: "you clown again", channelId: watched });
    expect(await capped.outcomes.next("moderated", { messageId: second })).toMatchObject({
      alerted: false,
      notAlertedReason: "hourly cap",
    });
    expect(
      capped.discord.requestsMatching("POST", new RegExp(`^/channels/${alerts}/messages$`)),
    ).toHaveLength(1);
    expect(await capped.metrics.text()).toContain('moodbot_moderation_alerts_total{outcome="capped"} 1');
  } finally {
    await capped.close();
  }
});
