/*
 * The unions the sentence tables are keyed by: why a chat turn was refused (the chat gate), what became of deleted
 * data (the store's erasure) and the settings' keys (the store's settings). They are named here, in the wording, and
 * the parts that produce them import them: the wording is a leaf, and a leaf imports no part above it.
 */

/** Why a chat turn was refused; each gets its own notice. */
export type RefusalReason = "user-rate" | "channel-rate" | "busy";

/** What became of deleted data on disk after a deletion. */
export type ErasureOutcome =
  /** SQLite: freed pages zeroed (secure_delete) and the write-ahead log checkpointed and truncated. */
  | "erased"
  /** Redis: an append-only file rewrite started, which drops the old values from the file. */
  | "rewriting"
  /** Redis: the last rewrite was less than the window ago; the next one is due when the window ends. */
  | "pending"
  /**
   * The store refused the rewrite (a managed or ACL-restricted Redis renames or forbids BGREWRITEAOF), or it
   * failed every time it was tried: the data is deleted from the store, and copies stay in the server's own files
   * until its operator rewrites them.
   */
  | "refused";

/** The keys of the per-guild and per-channel settings that server admins change with /settings. */
export const SETTING_KEYS = [
  "reactions",
  "reaction-share",
  "emoji-positive",
  "emoji-negative",
  "emoji-neutral",
  "persona",
  "chat-channel",
  "reply-chain",
  "language",
] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];
