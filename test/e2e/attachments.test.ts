import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

/*
 * Text attachments, fetched from the loopback Discord's CDN (ATTACHMENT_HOSTS names 127.0.0.1 here, as
 * cdn.discordapp.com in production): read into a mention and into /keywords' input, and every file that cannot be
 * read is named instead, without failing the reply.
 */

let h: BotHarness;
/** A host that accepts the connection and never answers. */
let silent: Server;

beforeAll(async () => {
  silent = createServer(() => undefined);
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  h = await startBotHarness({
    model: { favouredToken: " lorem" },
    withTasks: true,
    env: { ATTACHMENT_HOSTS: "127.0.0.1", ATTACHMENT_TIMEOUT_MS: "500", LLM_CONTEXT_SIZE: "4096" },
  });
});
afterAll(async () => {
  await h?.close();
  silent?.closeAllConnections();
  silent?.close();
});

it("reads a mention's text files into the turn, and names the ones it cannot read", async () => {
  const { discord } = h;
  const port = (silent.address() as AddressInfo).port;
  const elsewhere = discord.attachFile("elsewhere.txt", "never fetched");
  const attachments = [
    discord.attachFile("notes.md", "# Raid plan\nbring potions\r\nmeet at 9"),
    discord.attachFile("photo.png", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]), {
      contentType: "image/png",
    }),
    discord.attachFile("dump.txt", Buffer.from([0x68, 0x69, 0, 0x00, 0xff])),
    discord.attachFile("huge.log", "x".repeat(70 * 1024)),
    // Says it is small, and is not: the body is cut off at the cap.
    discord.attachFile("liar.log", "y".repeat(70 * 1024), { declaredSize: 100 }),
    discord.attachFile("moved.txt", "", {
      status: 302,
      location: String(elsewhere.url).replace("127.0.0.1", "localhost"),
    }),
    discord.attachFile("gone.txt", "", { status: 404 }),
    { ...discord.attachFile("slow.txt", ""), url: `http://127.0.0.1:${port}/slow.txt` },
  ];
  const id = discord.sendMessage({
    content: `<@${discord.botUser.id}> here is the plan`,
    mentionBot: true,
    attachments,
  });
  await h.waitForOutcome(id, "replied", 30_000);
  const [userTurn] = (await h.store.turns.read(discord.channelId)) ?? [];
  const text = String((userTurn as { text?: unknown } | undefined)?.text);
  expect(text).toContain(
    "here is the plan\n[attached file notes.md]\n# Raid plan\nbring potions\nmeet at 9\n[end of notes.md]",
  );
  expect(text).toContain("[attached file photo.png: not read, not a text file]");
  expect(text).toContain("[attached file dump.txt: not read, binary]");
  expect(text).toContain("[attached file huge.log: not read, over 64 KB]");
  expect(text).toContain("[attached file liar.log: not read, over 64 KB]");
  expect(text).toContain("[attached file moved.txt: not read, not on Discord's CDN]");
  expect(text).toContain("[attached file gone.txt: not read, the download failed (HTTP 404)]");
  expect(text).toContain("[attached file slow.txt: not read, the download failed]");
  // The redirect to another host was not followed, and a file too large by its size was never fetched.
  expect(discord.fileDownloads.some((path) => path.endsWith("/elsewhere.txt"))).toBe(false);
  expect(discord.fileDownloads.some((path) => path.endsWith("/huge.log"))).toBe(false);
  expect(discord.fileDownloads.some((path) => path.endsWith("/photo.png"))).toBe(false);
});

it("reads the text files of the messages /keywords reads", async () => {
  const { discord } = h;
  const file = discord.attachFile("changelog.txt", "fixed the lobby crash");
  discord.sendMessage({ content: "new build is up", attachments: [file] });
  const { token } = discord.sendSlashCommand({
    name: "keywords",
    options: [{ name: "count", type: 4, value: 1 }],
  });
  await discord.waitForRequests(
    "PATCH",
    new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`),
    1,
    30_000,
  );
  expect(discord.fileDownloads.filter((path) => path.endsWith("/changelog.txt"))).toHaveLength(1);
});
