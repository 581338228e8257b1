import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { NOT_READ } from "../../src/discord/attachmentReader.js";
import { DEFAULT_TASKS_DIR } from "../../src/platform/config.js";
import { loadTasks } from "../../src/tasks/tasks.js";
import { messageBudgetTokens, textTaskInputTokens } from "../../src/text/inputBudget.js";
import { type BotHarness, startBotHarness } from "../../testkit/harness.js";

/*
 * Text attachments, fetched from the loopback Discord's CDN (ATTACHMENT_HOSTS names 127.0.0.1 here, as
 * cdn.discordapp.com in production), as the model receives them: a mention's files share the message's budget, a
 * /summarize transcript's files share its input's, a file cut short says so before its end marker, a file beyond
 * the budget is named and never downloaded, and every file that cannot be read is named without failing the reply.
 * The tiny model's tokenizer spends about one token a byte on these files, so kilobytes here are kilotokens.
 */

let h: BotHarness;
/** A host that accepts the connection and never answers. */
let silent: Server;
const CONTEXT = 4096;

beforeAll(async () => {
  silent = createServer(() => undefined);
  silent.listen(0, "127.0.0.1");
  await once(silent, "listening");
  h = await startBotHarness({
    model: { favouredToken: " lorem" },
    withTasks: true,
    env: { ATTACHMENT_HOSTS: "127.0.0.1", ATTACHMENT_TIMEOUT_MS: "500", LLM_CONTEXT_SIZE: String(CONTEXT) },
  });
});
afterAll(async () => {
  await h?.close();
  silent?.closeAllConnections();
  silent?.close();
});

/** Lines of letters with no merges in the tiny vocabulary, different for each seed. */
function letters(bytes: number, seed: number): string {
  let state = seed;
  let text = "";
  while (text.length < bytes) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    text += text.length % 40 === 39 ? "\n" : String.fromCharCode(97 + (state % 26));
  }
  return text;
}

/** How many times the CDN served a file of this name. */
const downloads = (name: string) =>
  h.discord.fileDownloads.filter((path) => path.endsWith(`/${name}`)).length;

/** Sends a mention and returns the message of the user's turn the model received for it, without "name: ". */
async function mentionAsTheModelSawIt(content: string, attachments: unknown[]): Promise<string> {
  const { discord } = h;
  const id = discord.sendMessage({
    content: `<@${discord.botUser.id}> ${content}`,
    mentionBot: true,
    attachments,
  });
  await h.outcomes.next("replied", { messageId: id }, 30_000);
  const turns = h.model.callsOf("chat").at(-1)?.turns ?? [];
  const turn = turns.at(-1);
  expect(turn?.role).toBe("user");
  const text = turn?.text ?? "";
  return text.slice(text.indexOf(": ") + 2);
}

/** The start of a file the prompt shows, between its opening line and its cut marker. */
function shownStart(input: string, name: string): string {
  const opening = `[attached file ${name}]\n`;
  const start = input.indexOf(opening) + opening.length;
  return input.slice(start, input.indexOf("\n[file cut here: ", start));
}

it("reads a mention's files within the message's budget; a file beyond it is named, never downloaded", async () => {
  const { discord } = h;
  const huge = letters(70 * 1024, 1);
  const message = await mentionAsTheModelSawIt("here is the plan", [
    discord.attachFile("notes.md", "# Raid plan\nbring potions\r\nmeet at 9"),
    discord.attachFile("huge.log", huge),
    discord.attachFile("later.txt", letters(500, 2)),
  ]);
  const budget = messageBudgetTokens(CONTEXT);
  expect(message).toContain(
    "here is the plan\n[attached file notes.md]\n# Raid plan\nbring potions\nmeet at 9\n[end of notes.md]\n[attached file huge.log]\n",
  );
  // The log fills what the text and the notes leave, says where it was cut, and keeps its end marker.
  const start = shownStart(message, "huge.log");
  expect(huge.startsWith(start)).toBe(true);
  expect(message).toMatch(/\n\[file cut here: 0\.\d of 70 KB read\]\n\[end of huge\.log\]\n/);
  expect(message.endsWith(`\n[attached file later.txt: not read, ${NOT_READ.noRoom}]`)).toBe(true);
  const tokens = await h.model.countTokens(message);
  expect(tokens).toBeLessThanOrEqual(budget);
  expect(tokens).toBeGreaterThan(budget - 16);
  expect(await h.model.countTokens(start)).toBeGreaterThan(budget / 2);
  expect([downloads("notes.md"), downloads("huge.log"), downloads("later.txt")]).toEqual([1, 1, 0]);
});

it("cuts a file larger than Discord said at its room, and gives its real size", async () => {
  const { discord } = h;
  // Says it is small, and is not: the download stops at the room's cap.
  const message = await mentionAsTheModelSawIt("see this", [
    discord.attachFile("liar.log", letters(70 * 1024, 3), { declaredSize: 100 }),
  ]);
  expect(message).toMatch(
    /^see this\n\[attached file liar\.log\]\n[a-z\n]+\n\[file cut here: 0\.\d of 70 KB read\]\n\[end of liar\.log\]$/,
  );
  expect(await h.model.countTokens(message)).toBeLessThanOrEqual(messageBudgetTokens(CONTEXT));
});

it("names the files it cannot read, and never fetches one it does not need to", async () => {
  const { discord } = h;
  const port = (silent.address() as AddressInfo).port;
  const elsewhere = discord.attachFile("elsewhere.txt", "never fetched");
  const message = await mentionAsTheModelSawIt("what now", [
    discord.attachFile("photo.png", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2]), {
      contentType: "image/png",
    }),
    discord.attachFile("dump.txt", Buffer.from([0x68, 0x69, 0, 0x00, 0xff])),
    discord.attachFile("moved.txt", "", {
      status: 302,
      location: String(elsewhere.url).replace("127.0.0.1", "localhost"),
    }),
    discord.attachFile("gone.txt", "", { status: 404 }),
    { ...discord.attachFile("slow.txt", ""), url: `http://127.0.0.1:${port}/slow.txt` },
  ]);
  expect(message).toBe(
    [
      "what now",
      `[attached file photo.png: not read, ${NOT_READ.notText}]`,
      `[attached file dump.txt: not read, ${NOT_READ.binary}]`,
      `[attached file moved.txt: not read, ${NOT_READ.elsewhere}]`,
      `[attached file gone.txt: not read, ${NOT_READ.status(404)}]`,
      `[attached file slow.txt: not read, ${NOT_READ.failed}]`,
    ].join("\n"),
  );
  // The redirect to another host was not followed, and a file that is not text was never fetched.
  expect(downloads("elsewhere.txt")).toBe(0);
  expect(downloads("photo.png")).toBe(0);
});

it("reads the files of the messages /summarize reads into its input, within the input's budget", async () => {
  const { discord } = h;
  const changelog = "fixed the lobby crash\nadded a rematch button";
  const crash = letters(6 * 1024, 4);
  discord.sendMessage({
    content: "new build is up",
    attachments: [discord.attachFile("changelog.txt", changelog)],
  });
  discord.sendMessage({ content: "it crashed again", attachments: [discord.attachFile("crash.log", crash)] });
  discord.sendMessage({
    content: "my notes",
    attachments: [discord.attachFile("notes.txt", letters(800, 5))],
  });
  const { token } = discord.sendSlashCommand({
    name: "summarize",
    options: [{ name: "count", type: 4, value: 3 }],
  });
  await discord.waitForRequests(
    "PATCH",
    new RegExp(`^/webhooks/\\d+/${token}/messages/@original$`),
    1,
    30_000,
  );
  const input = h.model.callsOf("task").findLast((call) => call.task === "summarize")?.input ?? "";
  expect(input).toContain(
    `alice: new build is up\n[attached file changelog.txt]\n${changelog}\n[end of changelog.txt]\nalice: it crashed again\n[attached file crash.log]\n`,
  );
  expect(crash.startsWith(shownStart(input, "crash.log"))).toBe(true);
  expect(input).toMatch(/\n\[file cut here: \d\.\d of 6 KB read\]\n\[end of crash\.log\]\nalice: my notes\n/);
  expect(input.endsWith(`\n[attached file notes.txt: not read, ${NOT_READ.noRoom}]`)).toBe(true);
  const summarize = loadTasks(DEFAULT_TASKS_DIR).find((task) => task.name === "summarize");
  const maxTokens = summarize?.output.kind === "text" ? summarize.output.maxTokens : 0;
  expect(maxTokens).toBeGreaterThan(0);
  const budget = textTaskInputTokens(CONTEXT, maxTokens);
  expect(await h.model.countTokens(input)).toBeLessThanOrEqual(budget);
  expect(await h.model.countTokens(input)).toBeGreaterThan(budget - 16);
  expect([downloads("changelog.txt"), downloads("crash.log"), downloads("notes.txt")]).toEqual([1, 1, 0]);
});
