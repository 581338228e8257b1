import type { Logger } from "../platform/logger.js";
import type { ReadingBudget } from "../text/inputBudget.js";

/*
 * Text attachments read as part of a message: plain text, markdown, logs and source code. A message (or a channel
 * task's transcript) has one budget in the model's tokens, and its files share what its text leaves, in order: a
 * file is fetched only when there is room to read some of it, and never more of it than that room can hold. A file
 * cut short says so in the prompt, before its end marker. Only Discord's CDN hosts are fetched (ATTACHMENT_HOSTS),
 * with a timeout, and a redirect to another host is never followed. A file that is binary, elsewhere, beyond the
 * budget or fails to download is named in the prompt, not read, and never fails the reply.
 */

/** What a message says of one of its attachments (discord.js gives only its URL, not its bytes). */
export interface AttachmentRef {
  readonly name: string;
  readonly url: string;
  readonly size: number;
  readonly contentType: string | null;
}

export interface AttachmentReaderOptions {
  /** Host names files may be fetched from. */
  readonly hosts: ReadonlySet<string>;
  readonly timeoutMs: number;
  /** The most one download may hold, whatever the budget; MAX_ATTACHMENT_BYTES by default. */
  readonly maxBytes?: number;
}

/** A message as a reader takes it: its text, then its files in order. */
export interface MessageToRead {
  readonly text: string;
  readonly files: readonly AttachmentRef[];
}

/** A message once read: its text, and each of its files as the prompt shows it. */
export interface ReadMessage {
  readonly text: string;
  readonly files: readonly string[];
}

/** Puts read messages together as the input the model gets: one message, or a channel's transcript. */
export type Layout = (messages: readonly ReadMessage[]) => string;

/** The most one download may hold, whatever the budget: a bound on memory on a model with a very large context. */
export const MAX_ATTACHMENT_BYTES = 64 * 1024;
/**
 * Bytes downloaded for each token of room. Qwen's tokenizer spends about 4 bytes a token on English, Chinese and
 * source code alike, and no 2 KB stretch of them (or of indented JSON) takes more than 4.6
 * (test/unit/readingLimit.test.ts): 8 always fills the room, and keeps a download within a few kilobytes of what
 * the model reads. A file that runs out of bytes before its room is spent is marked as cut, as one that runs out of
 * room is.
 */
export const BYTES_PER_TOKEN_BOUND = 8;
/** A file that may need cutting is fetched only when at least this many tokens of its text would be shown. */
export const MIN_FILE_TOKENS = 8;
/** Redirects followed within the allowed hosts (Discord's CDN signs and moves URLs). */
const MAX_REDIRECTS = 3;
/** Final passes that shave the last file read when the assembled input overshoots by a token boundary or two. */
const FIT_ATTEMPTS = 3;

/** Why a file was named and not read; the model reads these. */
export const NOT_READ = {
  notText: "not a text file",
  binary: "binary",
  noRoom: "no room left to read it",
  elsewhere: "not on Discord's CDN",
  redirects: "too many redirects",
  failed: "the download failed",
  status: (status: number) => `the download failed (HTTP ${status})`,
} as const;
/** The longest reason a file may end up with: what a file not yet read holds its place with. */
const LONGEST_REASON = NOT_READ.status(503);

const TEXT_EXTENSIONS = new Set(
  (
    "txt md markdown log csv tsv json jsonl yaml yml toml ini cfg conf env xml html css scss " +
    "js mjs cjs ts tsx jsx py rb go rs java kt kts swift c h cc cpp hpp cs php sh bash zsh ps1 sql lua r dart " +
    "vue svelte gradle properties diff patch"
  ).split(" "),
);
const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-yaml|yaml|toml|x-sh|sql))/;

/** The start of a download: `complete` when the body ended within the cap. */
export interface BodyPrefix {
  readonly bytes: Uint8Array;
  readonly complete: boolean;
}

type Download = { readonly skipped: string } | (BodyPrefix & { readonly declaredBytes: number });

/** A downloaded file's text, and the room it has in the prompt. */
interface ReadFile {
  readonly text: string;
  /** The download stopped at its cap, before the file's end. */
  readonly partial: boolean;
  /** The file's size as far as anyone said: Discord, the CDN's content-length, or what arrived. */
  readonly totalBytes: number;
  /** Tokens the file may take in the prompt, its markers included. */
  room: number;
  /** The prompt shows only its start, and the cut marker. */
  cut: boolean;
}

/** One file's place in the input: what the prompt shows, and the file itself once read. */
interface Slot {
  readonly ref: AttachmentRef;
  part: string;
  read?: ReadFile;
}

export class AttachmentReader {
  private readonly maxBytes: number;

  constructor(
    private readonly options: AttachmentReaderOptions,
    private readonly logger: Logger,
  ) {
    this.maxBytes = options.maxBytes ?? MAX_ATTACHMENT_BYTES;
  }

  /**
   * The messages with their files, laid out within the budget. Every file keeps its name: a file not read yet holds
   * its place with the longest "not read" line, so the names fit whenever they can. The texts come next (cut, newest
   * first, only when they and the names alone overflow), then the files, in order, each with the room that is left.
   */
  async readWithin(
    messages: readonly MessageToRead[],
    layout: Layout,
    budget: ReadingBudget,
  ): Promise<string> {
    const texts = messages.map((message) => message.text);
    const slots = messages.map((message) =>
      message.files.map((ref): Slot => ({ ref, part: notReadLine(ref.name, LONGEST_REASON) })),
    );
    const render = () =>
      layout(texts.map((text, index) => ({ text, files: (slots[index] ?? []).map((slot) => slot.part) })));
    const count = async (text: string) => budget.meter.countTokens(text);

    await fitTexts(texts, render, budget);
    for (const slot of slots.flat()) {
      if (!isText(slot.ref)) {
        slot.part = notReadLine(slot.ref.name, NOT_READ.notText);
        continue;
      }
      const room = budget.tokens - (await count(render())) + (await count(slot.part));
      await this.fill(slot, room, budget);
    }
    return fitFiles(slots.flat(), render, budget);
  }

  /** Reads one text file into its slot with `room` tokens, or names it with why it was not read. */
  private async fill(slot: Slot, room: number, budget: ReadingBudget): Promise<void> {
    const { ref } = slot;
    const skip = (reason: string) => {
      slot.part = notReadLine(ref.name, reason);
    };
    if (!(await hasRoom(ref, room, budget))) return skip(NOT_READ.noRoom);
    const bodyTokens = room - (await budget.meter.countTokens(framed(ref.name, "")));
    const download = await this.fetchPrefix(ref, Math.min(this.maxBytes, bodyTokens * BYTES_PER_TOKEN_BOUND));
    if ("skipped" in download) return skip(download.skipped);
    const text = decodeText(download);
    if (text === undefined) return skip(NOT_READ.binary);
    slot.read = {
      text,
      partial: !download.complete,
      totalBytes: Math.max(ref.size, download.declaredBytes, download.bytes.length),
      room,
      cut: false,
    };
    await place(slot, budget);
  }

  private async fetchPrefix(ref: AttachmentRef, maxBytes: number): Promise<Download> {
    try {
      return await this.download(ref.url, maxBytes);
    } catch (error) {
      this.logger.debug({ file: ref.name, err: error }, "attachment not downloaded");
      return { skipped: NOT_READ.failed };
    }
  }

  /** At most `maxBytes` of the file's start, following redirects within the allowed hosts only. */
  private async download(url: string, maxBytes: number): Promise<Download> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    let target = new URL(url);
    for (let redirects = 0; ; redirects++) {
      if (!this.options.hosts.has(target.hostname)) return { skipped: NOT_READ.elsewhere };
      const response = await fetch(target, { redirect: "manual", signal });
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.body?.cancel();
        if (redirects >= MAX_REDIRECTS) return { skipped: NOT_READ.redirects };
        target = new URL(location, target);
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        return { skipped: NOT_READ.status(response.status) };
      }
      const declared = Number(response.headers.get("content-length") ?? 0);
      const prefix = await readPrefix(response, maxBytes);
      return { ...prefix, declaredBytes: Number.isFinite(declared) ? declared : 0 };
    }
  }
}

/**
 * Whether some of the file can be read in `room` tokens. A token is at least one byte, so a file no larger than
 * the room left within its markers fits whole; a larger one may be cut, and needs room for the cut marker and
 * MIN_FILE_TOKENS of its text.
 */
async function hasRoom(ref: AttachmentRef, room: number, budget: ReadingBudget): Promise<boolean> {
  const { meter } = budget;
  const whole = room - (await meter.countTokens(framed(ref.name, "")));
  if (whole >= Math.max(1, ref.size)) return true;
  const cut = room - (await meter.countTokens(framed(ref.name, "", cutMarker(ref.size, ref.size))));
  return cut >= MIN_FILE_TOKENS;
}

/** Cuts the texts, newest first, until they and the files' places fit the budget. */
async function fitTexts(texts: string[], render: () => string, budget: ReadingBudget): Promise<void> {
  const { meter } = budget;
  for (let index = texts.length - 1; index >= 0; index--) {
    const over = (await meter.countTokens(render())) - budget.tokens;
    if (over <= 0) return;
    const text = texts[index] ?? "";
    const tokens = await meter.countTokens(text);
    texts[index] = tokens > over ? await meter.truncateToTokens(text, tokens - over) : "";
  }
}

/**
 * The input, once every file is in: token counts of the parts do not quite add up at their joins, so the last file
 * read gives back any overshoot. The whole input is cut only if that cannot make it fit (texts and names alone).
 */
async function fitFiles(
  slots: readonly Slot[],
  render: () => string,
  budget: ReadingBudget,
): Promise<string> {
  const { meter } = budget;
  for (let attempt = 0; attempt < FIT_ATTEMPTS; attempt++) {
    const input = render();
    const over = (await meter.countTokens(input)) - budget.tokens;
    if (over <= 0) return input;
    const last = slots.findLast((slot) => slot.read !== undefined);
    if (!last?.read) break;
    last.read.room -= over;
    await place(last, budget);
  }
  return meter.truncateToTokens(render(), budget.tokens);
}

/** Puts a read file in its slot, or its name when its room holds none of it (a file larger than Discord said). */
async function place(slot: Slot, budget: ReadingBudget): Promise<void> {
  if (!slot.read) return;
  slot.part = await renderFile(slot.ref.name, slot.read, budget);
  if (slot.part !== "") return;
  delete slot.read;
  slot.part = notReadLine(slot.ref.name, NOT_READ.noRoom);
}

/**
 * A read file as the prompt shows it: whole between its markers, or its start, the cut, and its end marker; empty
 * when its room holds none of its text.
 */
async function renderFile(name: string, file: ReadFile, budget: ReadingBudget): Promise<string> {
  const { meter } = budget;
  const whole = framed(name, file.text);
  file.cut = file.partial || (await meter.countTokens(whole)) > file.room;
  if (!file.cut) return whole;
  // The marker's room is taken at the file's full size, the widest it can be.
  const frame = await meter.countTokens(framed(name, "", cutMarker(file.totalBytes, file.totalBytes)));
  const body = await meter.truncateToTokens(file.text, Math.max(0, file.room - frame));
  // A cut at a token boundary may split a character: its remains mean nothing to the model.
  const shown = body.replace(/\uFFFD+$/, "").trimEnd();
  if (shown === "") return "";
  return framed(name, shown, cutMarker(Buffer.byteLength(shown), file.totalBytes));
}

/** One message as the prompt shows it: its text, then each of its files on the lines after it. */
export function joinFiles(message: ReadMessage): string {
  return [message.text, ...message.files].filter((part) => part !== "").join("\n");
}

function framed(name: string, body: string, cut?: string): string {
  const lines = [`[attached file ${name}]`, body];
  if (cut !== undefined) lines.push(cut);
  lines.push(`[end of ${name}]`);
  return lines.join("\n");
}

function notReadLine(name: string, reason: string): string {
  return `[attached file ${name}: not read, ${reason}]`;
}

/** Where a file was cut, in the file's own terms: how much of it the model read. */
export function cutMarker(shownBytes: number, totalBytes: number): string {
  return `[file cut here: ${kilobytes(shownBytes)} of ${kilobytes(totalBytes)} KB read]`;
}

function kilobytes(bytes: number): string {
  const kb = bytes / 1024;
  if (kb >= 10) return String(Math.round(kb));
  return String(bytes > 0 ? Math.max(0.1, Math.round(kb * 10) / 10) : 0);
}

function isText(attachment: AttachmentRef): boolean {
  const type = attachment.contentType?.toLowerCase() ?? "";
  if (TEXT_TYPES.test(type)) return true;
  if (type !== "" && type !== "application/octet-stream") return false;
  const extension = attachment.name.toLowerCase().split(".").at(-1) ?? "";
  return attachment.name.includes(".") && TEXT_EXTENSIONS.has(extension);
}

/**
 * The body's first `maxBytes` bytes; the rest is never read (the stream is cancelled as soon as it passes the cap,
 * so at most one chunk beyond it arrives). `complete` when the body ended within the cap.
 */
export async function readPrefix(response: Response, maxBytes: number): Promise<BodyPrefix> {
  const reader = response.body?.getReader();
  if (!reader) return { bytes: new Uint8Array(), complete: true };
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: Buffer.concat(chunks), complete: true };
    chunks.push(value);
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      return { bytes: Buffer.concat(chunks).subarray(0, maxBytes), complete: false };
    }
  }
}

/**
 * UTF-8 text, or undefined for bytes that are not (a NUL byte, or invalid UTF-8). A prefix may end inside a
 * character: streaming decoding holds that character back instead of calling the file binary.
 */
function decodeText(prefix: BodyPrefix): string | undefined {
  if (prefix.bytes.includes(0)) return undefined;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(prefix.bytes, { stream: !prefix.complete });
    return text.replace(/\r\n/g, "\n").trim();
  } catch {
    return undefined;
  }
}
