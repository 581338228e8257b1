import type { Logger } from "./logger.js";

/*
 * Text attachments read as part of a message: plain text, markdown, logs and source code, up to 64 KB each. Only
 * Discord's CDN hosts are fetched (ATTACHMENT_HOSTS), with a timeout, and a redirect to another host is never
 * followed. A file that is binary, too large, elsewhere or fails to download is named in the prompt, not read, and
 * never fails the reply.
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
  readonly maxBytes?: number;
}

/** The most one file may hold to be read. */
export const MAX_ATTACHMENT_BYTES = 64 * 1024;
/** Redirects followed within the allowed hosts (Discord's CDN signs and moves URLs). */
const MAX_REDIRECTS = 3;

const TEXT_EXTENSIONS = new Set(
  (
    "txt md markdown log csv tsv json jsonl yaml yml toml ini cfg conf env xml html css scss " +
    "js mjs cjs ts tsx jsx py rb go rs java kt kts swift c h cc cpp hpp cs php sh bash zsh ps1 sql lua r dart " +
    "vue svelte gradle properties diff patch"
  ).split(" "),
);
const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-yaml|yaml|toml|x-sh|sql))/;

type Outcome = { readonly text: string } | { readonly skipped: string };

export class AttachmentReader {
  private readonly maxBytes: number;

  constructor(
    private readonly options: AttachmentReaderOptions,
    private readonly logger: Logger,
  ) {
    this.maxBytes = options.maxBytes ?? MAX_ATTACHMENT_BYTES;
  }

  /**
   * The attachments as text to put after the message: each file's content between markers, or its name and why it
   * was not read. Empty when there are none.
   */
  async read(attachments: readonly AttachmentRef[]): Promise<string> {
    if (attachments.length === 0) return "";
    const outcomes = await Promise.all(attachments.map((attachment) => this.readOne(attachment)));
    return outcomes
      .map((outcome, index) => {
        const name = attachments[index]?.name ?? "file";
        return "text" in outcome
          ? `[attached file ${name}]\n${outcome.text}\n[end of ${name}]`
          : `[attached file ${name}: not read, ${outcome.skipped}]`;
      })
      .join("\n");
  }

  private async readOne(attachment: AttachmentRef): Promise<Outcome> {
    if (!isText(attachment)) return { skipped: "not a text file" };
    if (attachment.size > this.maxBytes) return { skipped: `over ${this.maxBytes / 1024} KB` };
    try {
      return await this.download(attachment.url);
    } catch (error) {
      this.logger.debug({ file: attachment.name, err: error }, "attachment not downloaded");
      return { skipped: "the download failed" };
    }
  }

  private async download(url: string): Promise<Outcome> {
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    let target = new URL(url);
    for (let redirects = 0; ; redirects++) {
      if (!this.options.hosts.has(target.hostname)) return { skipped: "not on Discord's CDN" };
      const response = await fetch(target, { redirect: "manual", signal });
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location !== null) {
        await response.body?.cancel();
        if (redirects >= MAX_REDIRECTS) return { skipped: "too many redirects" };
        target = new URL(location, target);
        continue;
      }
      if (!response.ok) {
        await response.body?.cancel();
        return { skipped: `the download failed (HTTP ${response.status})` };
      }
      const declared = Number(response.headers.get("content-length") ?? 0);
      if (declared > this.maxBytes) {
        await response.body?.cancel();
        return { skipped: `over ${this.maxBytes / 1024} KB` };
      }
      const bytes = await readAtMost(response, this.maxBytes);
      if (bytes === undefined) return { skipped: `over ${this.maxBytes / 1024} KB` };
      return decodeText(bytes);
    }
  }
}

function isText(attachment: AttachmentRef): boolean {
  const type = attachment.contentType?.toLowerCase() ?? "";
  if (TEXT_TYPES.test(type)) return true;
  if (type !== "" && type !== "application/octet-stream") return false;
  const extension = attachment.name.toLowerCase().split(".").at(-1) ?? "";
  return attachment.name.includes(".") && TEXT_EXTENSIONS.has(extension);
}

/** The body, or undefined as soon as it grows past `maxBytes` (a server may not say how big it is). */
async function readAtMost(response: Response, maxBytes: number): Promise<Uint8Array | undefined> {
  const reader = response.body?.getReader();
  if (!reader) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** UTF-8 text, or "binary" for bytes that are not (a NUL byte, or invalid UTF-8). */
function decodeText(bytes: Uint8Array): Outcome {
  if (bytes.includes(0)) return { skipped: "binary" };
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes).replace(/\r\n/g, "\n").trim() };
  } catch {
    return { skipped: "binary" };
  }
}
