import type { Message } from "discord.js";
import type { AttachmentReader, AttachmentRef } from "../attachments.js";

/** A message's attachments as the reader takes them: discord.js gives each one's URL, name, size and type. */
export function attachmentRefs(message: Message): AttachmentRef[] {
  return [...message.attachments.values()].map((attachment) => ({
    name: attachment.name,
    url: attachment.url,
    size: attachment.size,
    contentType: attachment.contentType,
  }));
}

/** The message's text with its text attachments after it (and the names of those that were not read). */
export async function withAttachments(
  text: string,
  message: Message,
  reader: AttachmentReader,
): Promise<string> {
  const files = await reader.read(attachmentRefs(message));
  if (files === "") return text;
  return text === "" ? files : `${text}\n${files}`;
}
