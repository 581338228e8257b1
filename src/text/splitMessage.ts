/** Discord's limit for one message's content. */
export const DISCORD_MESSAGE_LIMIT = 2000;

const CLOSING_FENCE = "\n```";
const FENCE_LINE = /^\s*```/;
/** A fence opener carried to the next chunk keeps at most this much of its language tag. */
const MAX_OPENER = 24;

/**
 * Splits text into chunks of at most `limit` characters, on line breaks where possible, else on spaces, else
 * anywhere (never inside a surrogate pair). A code fence that a cut leaves open is closed at the end of the chunk
 * and reopened, with its language, at the start of the next one.
 */
export function splitMessage(text: string, limit = DISCORD_MESSAGE_LIMIT): string[] {
  const chunks: string[] = [];
  let rest = text.replace(/\r\n/g, "\n").trim();
  let openFence: string | undefined;
  while (rest.length > 0) {
    const prefix = openFence === undefined ? "" : `${openFence}\n`;
    if (prefix.length + rest.length <= limit) {
      chunks.push(prefix + rest);
      break;
    }
    const cut = findCut(rest, limit - prefix.length - CLOSING_FENCE.length);
    const piece = rest.slice(0, cut).trimEnd();
    rest = rest.slice(cut).replace(/^[ \t]*\n?/, "");
    openFence = fenceOpenAfter(piece, openFence);
    const chunk = prefix + piece + (openFence === undefined ? "" : CLOSING_FENCE);
    if (piece.trim() !== "") chunks.push(chunk);
  }
  return chunks;
}

function findCut(text: string, max: number): number {
  if (text.length <= max) return text.length;
  const window = text.slice(0, max + 1);
  const newline = window.lastIndexOf("\n");
  if (newline > max / 3) return newline;
  let cut = window.lastIndexOf(" ");
  if (cut <= max / 3) cut = max;
  // A cut mid-line makes the rest start a new message: never let it start with "```", which Discord would read
  // as a fence there.
  while (cut > 1 && startsFence(text, cut)) cut--;
  const code = text.charCodeAt(cut - 1);
  // Never split a surrogate pair: the half would be an invalid character on both sides.
  return code >= 0xd800 && code <= 0xdbff ? cut - 1 : cut;
}

function startsFence(text: string, at: number): boolean {
  const fence = /[ \t]*```/y;
  fence.lastIndex = at;
  return fence.test(text);
}

/** The fence opener still open after `piece`, given the one open before it. */
function fenceOpenAfter(piece: string, openBefore: string | undefined): string | undefined {
  let open = openBefore;
  for (const line of piece.split("\n")) {
    if (!FENCE_LINE.test(line)) continue;
    // Reopen with the fence and its language tag only: anything else on the opening line is content.
    open =
      open === undefined
        ? (line.trim().match(/^```[\w+#.-]*/)?.[0] ?? "```").slice(0, MAX_OPENER)
        : undefined;
  }
  return open;
}
