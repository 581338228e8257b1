/*
 * llama-server's own view of its work: GET /slots (on by default; --no-slots turns it off). A test reads from it
 * whether the server is still decoding for a request the bot has given up on, which no Discord request can show.
 */

/** One slot as /slots reports it. */
export interface SlotState {
  readonly id: number;
  readonly processing: boolean;
  /** Tokens generated for the task it is processing (0 once it is idle: llama-server resets the count). */
  readonly decoded: number;
  /** Tokens it would still generate for that task before its limit (n_predict); -1 when it has none. */
  readonly remaining: number;
}

const SLOTS_REQUEST_TIMEOUT_MS = 2_000;
const POLL_INTERVAL_MS = 50;

/** The slots now. Throws, naming the answer, when /slots is off or answers something else. */
export async function readSlots(serverUrl: string): Promise<SlotState[]> {
  const response = await fetch(`${serverUrl}/slots`, {
    signal: AbortSignal.timeout(SLOTS_REQUEST_TIMEOUT_MS),
  });
  const text = await response.text();
  if (response.status !== 200)
    throw new Error(`GET /slots answered ${response.status} (started with --no-slots?): ${text}`);
  const slots = JSON.parse(text) as unknown;
  if (!Array.isArray(slots)) throw new Error(`GET /slots answered something other than a list: ${text}`);
  return slots.map((raw) => {
    const slot = raw as {
      id?: unknown;
      is_processing?: unknown;
      next_token?: Array<{ n_decoded?: unknown; n_remain?: unknown }>;
    };
    if (typeof slot.id !== "number" || typeof slot.is_processing !== "boolean")
      throw new Error(`GET /slots answered a slot without id or is_processing: ${JSON.stringify(raw)}`);
    const { n_decoded: decoded, n_remain: remaining } = slot.next_token?.[0] ?? {};
    return {
      id: slot.id,
      processing: slot.is_processing,
      decoded: typeof decoded === "number" ? decoded : 0,
      remaining: typeof remaining === "number" ? remaining : -1,
    };
  });
}

/**
 * Polls /slots until `done` holds for them, for at most `timeoutMs`; returns the slots that satisfied it and how
 * long that took. The failure names the slots last seen.
 */
export async function slotsUntil(
  serverUrl: string,
  done: (slots: readonly SlotState[]) => boolean,
  what: string,
  timeoutMs: number,
): Promise<{ readonly slots: SlotState[]; readonly elapsedMs: number }> {
  const started = Date.now();
  let last: SlotState[] = [];
  for (
    let polls = 0;
    Date.now() - started <= timeoutMs && polls < timeoutMs / POLL_INTERVAL_MS + 1;
    polls++
  ) {
    last = await readSlots(serverUrl);
    if (done(last)) return { slots: last, elapsedMs: Date.now() - started };
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`/slots never showed ${what} within ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
}

export const someSlotDecoding = (slots: readonly SlotState[]) =>
  slots.some((slot) => slot.processing && slot.decoded > 0);
export const noSlotProcessing = (slots: readonly SlotState[]) => slots.every((slot) => !slot.processing);
