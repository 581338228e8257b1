import { normaliseInput } from "../text/normaliseInput.js";

/** One line of a conversation as a task reads it. */
export interface TranscriptLine {
  readonly author: string;
  readonly text: string;
}

/**
 * A conversation as tasks such as /summarize read it: one "name: text" line each, in the order given; lines with
 * no text after normalising are left out. Discord channels and the console's history both build it here.
 */
export function transcript(lines: Iterable<TranscriptLine>): string {
  const kept: string[] = [];
  for (const { author, text } of lines) {
    const clean = normaliseInput(text);
    if (clean !== "") kept.push(`${author}: ${clean}`);
  }
  return kept.join("\n");
}
