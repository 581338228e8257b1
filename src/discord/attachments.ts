import type { Message } from "discord.js";
import type { ReadingBudget } from "../text/inputBudget.js";
import { type AttachmentReader, type AttachmentRef, joinFiles, type Layout } from "./attachmentReader.js";

/** A message's attachments as the reader takes them: discord.js gives each one's URL, name, size and type. */
export function attachmentRefs(message: Message): AttachmentRef[] {
  return [...message.attachments.values()].map((attachment) => ({
    name: attachment.name,
    url: attachment.url,
    size: attachment.size,
    contentType: attachment.contentType,
  }));
}

const oneMessage: Layout = (messages) => messages.map(joinFiles).join("\n");

/**
 * The message's text with its text attachments after it, within the message's budget (the files share what the
 * text leaves), and the names of those that were not read.
 */
export async function withAttachments(
  text: string,
  message: Message,
  reader: AttachmentReader,
  budget: ReadingBudget,
): Promise<string> {
  const files = attachmentRefs(message);
  if (files.length === 0) return text;
  return reader.readWithin([{ text, files }], oneMessage, budget);
}
