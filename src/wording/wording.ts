import { ConfigError } from "../platform/errors.js";
import type { SentimentLabel } from "../platform/sentimentLabels.js";
import type { ErasureOutcome, RefusalReason, SettingKey } from "./keys.js";

/**
 * Every sentence the bot says to people, in each language it speaks, keyed and typed: a translation cannot miss a
 * key, and no notice hides beside the code that sends it. Log lines and errors for operators are not here.
 */

/** The bot speaks English and Chinese. */
export type Language = "en" | "zh";

export interface Wording {
  readonly labels: Readonly<Record<SentimentLabel, string>>;
  /** Chat */
  readonly emptyReply: string;
  readonly emptyMention: string;
  readonly chatError: string;
  /** To a mention or a command while the model cannot take work (a model server away). */
  readonly modelUnavailable: string;
  /** Under a reply that stopped midway (a restart, an error). */
  readonly cutShort: string;
  readonly refusal: Readonly<Record<RefusalReason, string>>;
  /** Commands in general */
  readonly commandError: string;
  readonly shuttingDown: string;
  readonly unknownCommand: string;
  /** /sentiment, Analyze mood and label tasks */
  readonly confidence: (percent: string) => string;
  readonly noText: string;
  readonly noTextInMessage: string;
  readonly noAnswer: string;
  /** /forget */
  readonly forgotten: string;
  readonly forgetDenied: string;
  /** /help */
  readonly helpTitle: (model: ModelLocation) => string;
  readonly helpBody: readonly string[];
  readonly helpCommands: string;
  readonly analyzeHint: string;
  /** /mood */
  readonly moodSummary: (week: boolean, summary: string) => string;
  /** Drawn into the chart image (its bundled font has Chinese). */
  readonly moodChartTitle: (week: boolean) => string;
  /** The "Mood of this member" context menu. */
  readonly memberMood: {
    readonly title: (name: string) => string;
    readonly summary: (name: string, summary: string) => string;
    readonly denied: string;
    readonly optedOut: (name: string) => string;
    readonly guildOnly: string;
  };
  /** /privacy */
  readonly privacy: {
    readonly show: (facts: PrivacyFacts) => string;
    readonly optedOut: (retentionDays: number) => string;
    readonly optedIn: string;
    readonly exported: (turns: number, servers: number) => string;
    readonly exportedNothing: string;
    readonly deleted: (turns: number, erasure: ErasureOutcome) => string;
    /** A deletion the store failed midway: nothing is said to be deleted that may not be. */
    readonly notDeleted: string;
    readonly unavailable: string;
  };
  /** Moderation alerts and /settings moderation */
  readonly moderation: {
    readonly alertTitle: (label: string) => string;
    readonly author: string;
    readonly channel: string;
    readonly label: string;
    readonly confidence: string;
    readonly jump: string;
    readonly dryRun: string;
    readonly deleteButton: string;
    readonly timeoutButton: string;
    readonly dismissButton: string;
    readonly action: string;
    readonly deleted: (by: string) => string;
    readonly timedOut: (by: string) => string;
    readonly dismissed: (by: string) => string;
    readonly refusedRoleOrder: string;
    readonly alreadyGone: string;
    readonly needs: (permission: string) => string;
    readonly setup: (setup: ModerationSetupText) => string;
    readonly unavailable: string;
    readonly noAlertChannel: string;
    /** In the alert channel, once when checks stop for want of the model, and once when they run again. */
    readonly paused: string;
    readonly resumed: string;
  };
  /** /settings */
  readonly settings: {
    readonly guildOnly: string;
    readonly denied: string;
    readonly inForce: string;
    readonly unset: string;
    readonly from: { readonly channel: string; readonly guild: string };
    readonly where: { readonly channel: string; readonly guild: string };
    readonly help: Readonly<Record<SettingKey, string>>;
    readonly reset: (key: string, where: string) => string;
    readonly changed: (key: string, value: string, where: string) => string;
    readonly invalid: (key: string, help: string) => string;
    readonly purgeConfirm: string;
    readonly purgeButton: string;
    readonly cancelButton: string;
    readonly purged: (channels: number) => string;
    readonly purgeCancelled: string;
  };
}

/**
 * Where the model reads members' messages, as the bot tells them: on the bot's own machine (in its process, or on a
 * model server at a loopback address), or on a model server elsewhere, named by its host. Members are promised that
 * no message leaves the machine only in the first case.
 */
export type ModelLocation =
  | { readonly where: "this-machine" }
  | { readonly where: "server"; readonly host: string };

/** The model in the bot's own process, or on a model server at a loopback address. */
export const ON_THIS_MACHINE: ModelLocation = { where: "this-machine" };

/**
 * Where a model server's URL (LLM_SERVER_URL; undefined in-process) puts the model. Only an address that cannot leave
 * the machine counts as this machine: localhost and 127.0.0.0/8, or ::1. A name that merely resolves here (the
 * machine's own host name, a container's service name) counts as elsewhere, since members are told nothing leaves
 * the machine only when that holds whatever the resolver says. The host is shown without the URL's user, password,
 * port or path, which may hold credentials.
 */
export function modelLocationOf(serverUrl: string | undefined): ModelLocation {
  if (serverUrl === undefined) return ON_THIS_MACHINE;
  const url = URL.canParse(serverUrl) ? new URL(serverUrl) : undefined;
  // Never repeated in the error: the text may hold a key.
  if (url === undefined || !["http:", "https:"].includes(url.protocol) || url.hostname === "") {
    throw new ConfigError(
      "LLM_SERVER_URL",
      "is not an http or https URL",
      "Give it as http://host:port or https://host:port.",
    );
  }
  const host = url.hostname.toLowerCase();
  const loopback =
    host === "localhost" ||
    host === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) ||
    // An IPv4-mapped loopback address, as URL normalises it: [::ffff:127.0.0.1] becomes [::ffff:7f00:1].
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host);
  return loopback ? ON_THIS_MACHINE : { where: "server", host };
}

/** A server's moderation setup, as /settings moderation shows it. */
export interface ModerationSetupText {
  /** Where the messages it checks are read. */
  readonly model: ModelLocation;
  readonly mode: string;
  readonly alertChannel: string | undefined;
  readonly channels: readonly string[];
  readonly threshold: string;
  readonly bypassRoles: readonly string[];
}

/** What /privacy show reports about the member who asks. */
export interface PrivacyFacts {
  /** Where the messages the bot reads go. */
  readonly model: ModelLocation;
  readonly retentionDays: number;
  readonly optedOut: boolean;
  /** Their stored turns, and in how many channels. */
  readonly turns: number;
  readonly channels: number;
  /** Days with mood counts of theirs, across servers. */
  readonly tallyDays: number;
}

const en: Wording = {
  labels: { positive: "positive", negative: "negative", neutral: "neutral" },
  emptyReply: "I couldn't come up with a reply to that. Could you rephrase it?",
  emptyMention: "Hi! Mention me with a message and I'll answer. Try `/sentiment` to read a text's mood.",
  chatError: "Sorry, something went wrong while I was thinking. Please try again in a moment.",
  modelUnavailable: "The model server is not reachable right now; try again in a moment.",
  cutShort: "(reply cut short)",
  refusal: {
    "user-rate": "You're sending me messages faster than I can think! Give me a minute and try again. 🙂",
    "channel-rate": "This channel is keeping me very busy. Give me a minute and try again. 🙂",
    busy: "I already have a few messages to answer here. Ask me again once I've caught up. 🙂",
  },
  commandError: "Sorry, that didn't work. Please try again in a moment.",
  shuttingDown: "I'm restarting right now. Please try again in a minute.",
  unknownCommand: "I don't know that command. It may have been removed.",
  confidence: (percent) => `(confidence ${percent})`,
  noText: "There is no text to read there. Try `/sentiment text: what a great day!`",
  noTextInMessage: "That message has no text I can read (only attachments, stickers or embeds).",
  noAnswer: "I had nothing to say about that. Try again with more to go on.",
  forgotten: "Done: I've forgotten this channel's conversation. The next mention starts fresh.",
  forgetDenied:
    "Only members with Manage Messages (or a role the bot owner allowed) can clear the conversation.",
  helpTitle: (model) =>
    model.where === "this-machine"
      ? "**moodbot**: one small language model, running on this server's own machine."
      : `**moodbot**: one language model, on the model server \`${model.host}\`: the messages I read are sent there.`,
  helpBody: [
    "• I react to messages with their mood (positive / negative / neutral).",
    "• Mention me to chat; I remember this channel's recent conversation.",
    "• `/privacy` shows what I store about you, and lets you opt out, export it or delete it.",
    "• Right-click a member → Apps → **Mood of this member**: their mood counts here over 7 days.",
  ],
  helpCommands: "Commands:",
  analyzeHint: "Right-click a message → Apps → **Analyze mood** to read its mood privately.",
  moodSummary: (week, summary) => `**Mood over the last ${week ? "7 days" : "24 hours"}**: ${summary}`,
  moodChartTitle: (week) => `Mood, last ${week ? "7 days" : "24 hours"} (UTC)`,
  memberMood: {
    title: (name) => `Mood of ${name}, last 7 days (UTC)`,
    summary: (name, summary) => `**${name}'s mood in this server over the last 7 days**: ${summary}`,
    denied: "Only the member themself, or someone with Manage Messages, can see a member's mood.",
    optedOut: (name) => `${name} opted out: moodbot keeps no mood counts for them.`,
    guildOnly: "Mood counts are per server: use this in a server.",
  },
  privacy: {
    show: (f) =>
      [
        "**What moodbot stores about you**",
        `• **Conversation**: when you mention the bot, your message and its reply are kept in that channel's history, with your Discord id, for ${f.retentionDays} days. Now: ${f.turns} of your messages in ${f.channels} channels.`,
        `• **Mood counts**: per server and per day, how many of your messages read positive, negative or neutral, for ${f.retentionDays} days. Never the text. Now: ${f.tallyDays} days with counts.`,
        "• **Where your data is**: lists of the channels and servers that hold your messages and counts, with your Discord id, so that your data can be found and deleted. Each entry leaves with the data it points to.",
        `• **Settings**: your opt-out choice. Now: ${f.optedOut ? "you are opted out" : "you are not opted out"}. An opt-out stays after \`/privacy delete\`, so that it goes on holding; \`/privacy opt-in\` removes it.`,
        `• **After a deletion**: a note that your data was deleted, kept ${f.retentionDays} days so that no other copy of the bot writes it back. It is filed under a keyed hash of your id, never the id.`,
        f.model.where === "this-machine"
          ? "Mood reactions read each message as it arrives and keep nothing of it but the counts above. The model runs on the bot's own machine: no message is sent to any other service."
          : `Mood reactions read each message as it arrives, and the bot keeps nothing of it but the counts above. The model runs on a model server, \`${f.model.host}\`, not on the bot's machine: every message the bot reads is sent there. That server's prompt cache holds members' text, and so can its logs, for as long as its operator keeps them; \`/privacy delete\` does not reach them.`,
        "**Your choices**: `/privacy opt-out` stops all of this for you in every server (the bot still answers your mentions, and stores nothing of them; `/summarize` and `/keywords` leave your messages out). `/privacy export` sends you everything stored about you; `/privacy delete` removes all of it but the opt-out.",
        "**Moderation**: where a server turned on moodbot's moderation, your messages in the channels it covers are still checked after you opt out. Moderation is the server's rule, not analytics: moodbot stores nothing of what it checks, and an alert shows the message to the server's moderators.",
      ].join("\n"),
    optedOut: (days) =>
      `Done: you are opted out in every server moodbot is in. From your next message: no mood reactions, no mood counts, and nothing stored when you mention the bot (it still answers). What was stored before leaves within ${days} days, or now with \`/privacy delete\`.`,
    optedIn:
      "Done: you are opted in again. Your messages get mood reactions and counts, and your conversations with the bot are remembered.",
    exported: (turns, servers) =>
      `Here is everything moodbot stores about you: ${turns} of your messages, and mood counts in ${servers} servers.`,
    exportedNothing:
      "moodbot stores none of your messages or mood counts. The file below lists what it does keep: your opt-out if you made one, and the note of a deletion if you asked for one.",
    deleted: (turns, erasure) =>
      `Deleted: ${turns} turns (your messages and the bot's replies to them), your mood counts in every server and the lists that held your id. ${
        {
          erased: "They are gone from the store's files too.",
          rewriting:
            "They are gone from Redis now, and leave its append-only file at its next rewrite, within the hour.",
          pending:
            "They are gone from Redis now, and leave its append-only file at its next rewrite, within the hour.",
          refused:
            "They are gone from the store now; copies stay in the store server's own files until the bot's operator rewrites them. The operator has been told.",
        }[erasure]
      } An opt-out, if you made one, stays so that it goes on holding: \`/privacy opt-in\` removes it.`,
    notDeleted:
      "I can't reach my storage right now, so your stored data is not deleted yet. Please run `/privacy delete` again in a minute.",
    unavailable: "I can't reach my storage right now, so I can't do that. Please try again in a minute.",
  },
  moderation: {
    alertTitle: (label) => `Possible ${label}`,
    author: "Author",
    channel: "Channel",
    label: "Label",
    confidence: "Confidence",
    jump: "Jump to the message",
    dryRun:
      "Dry run: no action buttons. Tune the threshold, then switch to live with /settings moderation mode:live.",
    deleteButton: "Delete message",
    timeoutButton: "Timeout 10 min",
    dismissButton: "Dismiss",
    action: "Action",
    deleted: (by) => `Message deleted by ${by}.`,
    timedOut: (by) => `Author timed out for 10 minutes by ${by}.`,
    dismissed: (by) => `Dismissed by ${by}.`,
    refusedRoleOrder:
      "Discord refused: the author's highest role is above moodbot's, or moodbot lacks the permission. Move moodbot's role above theirs in Server Settings → Roles.",
    alreadyGone: "The message was already deleted.",
    needs: (permission) => `You need the ${permission} permission to do that.`,
    setup: (s) =>
      [
        `**Moderation: ${s.mode}**`,
        `• Alerts go to: ${s.alertChannel ?? "(no channel set)"}`,
        `• Channels checked: ${s.channels.length === 0 ? "(none)" : s.channels.join(", ")}`,
        `• Threshold: ${s.threshold}`,
        `• Roles never checked: ${s.bypassRoles.length === 0 ? "(none)" : s.bypassRoles.join(", ")}`,
        `${
          s.model.where === "this-machine"
            ? "Moderation runs on this machine's own model."
            : `Moderation sends every message it checks to the model server \`${s.model.host}\`, whose prompt cache holds their text, and so can its logs.`
        } Dry run posts alerts without buttons; live adds Delete, Timeout and Dismiss. Members who opted out with /privacy are still checked: moderation is the server's rule, not analytics.`,
      ].join("\n"),
    unavailable:
      "Moderation is unavailable: the bot was started without its toxicity task (prompts/tasks/toxicity.json).",
    noAlertChannel: "Choose an alert channel first: /settings moderation alert-channel:#channel.",
    paused:
      "Moderation is paused: moodbot's model server cannot be used right now, so new messages are not being checked. Another notice follows here when checks run again.",
    resumed: "Moderation has resumed: new messages are being checked again.",
  },
  settings: {
    guildOnly: "Settings are per server: use this command in a server channel.",
    denied: "Only members with Manage Server can change the bot's settings.",
    inForce: "Settings in force in this channel:",
    unset: "(default)",
    from: { channel: "channel", guild: "server" },
    where: { channel: "this channel", guild: "this server" },
    help: {
      reactions: "mood reactions: on or off",
      "reaction-share": "share of messages that get a reaction, 0 to 100 (%)",
      "emoji-positive": "emoji for positive (unicode, <:name:id>, or none)",
      "emoji-negative": "emoji for negative (unicode, <:name:id>, or none)",
      "emoji-neutral": "emoji for neutral (unicode, <:name:id>, or none)",
      persona: "the bot's persona for chat (its system prompt)",
      "chat-channel": "answer every message here without a mention: on or off",
      "reply-chain":
        "a reply to the bot's message counts as a mention even with its ping off (a pinged reply always does): on or off",
      language: "the bot's own language here: en or zh",
    },
    reset: (key, where) => `\`${key}\` is back to its default for ${where}.`,
    changed: (key, value, where) =>
      `\`${key}\` is now \`${value}\` for ${where}. It applies from the next message.`,
    invalid: (key, help) => `\`${key}\` cannot take that value: ${help}.`,
    purgeConfirm:
      "This deletes everything moodbot stores for this server: every channel's conversation history and mood counts, the members' mood counts here, and all settings. It cannot be undone.",
    purgeButton: "Delete everything",
    cancelButton: "Cancel",
    purged: (channels) =>
      `Done: everything moodbot stored for this server is deleted (${channels} channels). The settings are back to their defaults.`,
    purgeCancelled: "Nothing was deleted.",
  },
};

const zh: Wording = {
  labels: { positive: "正面", negative: "负面", neutral: "中性" },
  emptyReply: "这个我想不出怎么回答，能换个说法吗？",
  emptyMention: "你好！提到我并附上一句话，我就会回答。试试 `/sentiment` 读出一段文字的情绪。",
  chatError: "抱歉，我思考的时候出了点问题，请稍后再试。",
  modelUnavailable: "现在连不上模型服务器，请稍后再试。",
  cutShort: "（回复被中断）",
  refusal: {
    "user-rate": "你发消息太快啦，我想不过来！过一分钟再试吧。🙂",
    "channel-rate": "这个频道让我忙不过来了，过一分钟再试吧。🙂",
    busy: "这里还有几条消息等着我回答，等我回复完再问我吧。🙂",
  },
  commandError: "抱歉，没有成功，请稍后再试。",
  shuttingDown: "我正在重启，请过一分钟再试。",
  unknownCommand: "我不认识这个命令，它可能已经被移除了。",
  confidence: (percent) => `（置信度 ${percent}）`,
  noText: "这里没有可以读的文字。试试 `/sentiment text: 今天真开心！`",
  noTextInMessage: "这条消息没有我能读的文字（只有附件、贴纸或嵌入内容）。",
  noAnswer: "这个我没什么可说的，多给我一点内容再试试。",
  forgotten: "好了：我已经忘掉这个频道的对话，下次提到我会重新开始。",
  forgetDenied: "只有拥有「管理消息」权限（或机器人管理员指定角色）的成员才能清除对话。",
  helpTitle: (model) =>
    model.where === "this-machine"
      ? "**moodbot**：一个小型语言模型，运行在这个服务器自己的机器上。"
      : `**moodbot**：一个语言模型，运行在模型服务器 \`${model.host}\` 上：我读取的消息会发送到那里。`,
  helpBody: [
    "• 我会给消息加上情绪表情（正面 / 负面 / 中性）。",
    "• 提到我就可以聊天；我会记得这个频道最近的对话。",
    "• `/privacy` 查看我保存了你的哪些数据，也可以退出、导出或删除。",
    "• 右键点一位成员 → 应用 → **这位成员的情绪**：查看其最近 7 天在这里的情绪计数。",
  ],
  helpCommands: "命令：",
  analyzeHint: "右键点一条消息 → 应用 → **分析情绪**，可以私下查看它的情绪。",
  moodSummary: (week, summary) => `**最近${week ? " 7 天" : " 24 小时"}的情绪**：${summary}`,
  moodChartTitle: (week) => `最近${week ? " 7 天" : " 24 小时"}的情绪（UTC）`,
  memberMood: {
    title: (name) => `${name} 最近 7 天的情绪（UTC）`,
    summary: (name, summary) => `**${name} 最近 7 天在这个服务器的情绪**：${summary}`,
    denied: "只有成员本人或拥有「管理消息」权限的人才能查看成员的情绪。",
    optedOut: (name) => `${name} 已选择退出：moodbot 不为其保存情绪计数。`,
    guildOnly: "情绪计数按服务器保存：请在服务器里使用。",
  },
  privacy: {
    show: (f) =>
      [
        "**moodbot 保存了你的哪些数据**",
        `• **对话**：你提到机器人时，你的消息和它的回复会连同你的 Discord ID 保存在该频道的对话记录里，保存 ${f.retentionDays} 天。目前：${f.channels} 个频道里有你的 ${f.turns} 条消息。`,
        `• **情绪计数**：按服务器、按天统计你的消息中正面、负面、中性各有几条，保存 ${f.retentionDays} 天。从不保存文字。目前：${f.tallyDays} 天有计数。`,
        "• **数据所在位置**：列出保存着你的消息和计数的频道与服务器，附有你的 Discord ID，以便找到并删除你的数据。每一项都随它指向的数据一起过期。",
        `• **设置**：你是否选择退出。目前：${f.optedOut ? "你已退出" : "你没有退出"}。退出选择在 \`/privacy delete\` 之后仍然保留，以便继续有效；\`/privacy opt-in\` 会删除它。`,
        `• **删除之后**：一条"你的数据已删除"的记录，保存 ${f.retentionDays} 天，防止机器人的其他副本把数据写回。它以你的 ID 的带密钥哈希存放，从不保存 ID 本身。`,
        f.model.where === "this-machine"
          ? "情绪表情是在消息到达时读取的，除了上面的计数什么都不保留。模型运行在机器人自己的机器上，不会把任何消息发给其他服务。"
          : `情绪表情是在消息到达时读取的，机器人除了上面的计数什么都不保留。模型运行在模型服务器 \`${f.model.host}\` 上，而不是机器人自己的机器：机器人读取的每条消息都会发送到那里。那台服务器的提示词缓存保存着成员的文字，它的日志也可能保存，保存多久由它的运营者决定；\`/privacy delete\` 删除不到那里。`,
        "**你的选择**：`/privacy opt-out` 在所有服务器为你停止以上一切（机器人仍会回答你的提问，但不保存任何内容；`/summarize` 和 `/keywords` 也会跳过你的消息）。`/privacy export` 把保存的关于你的所有数据发给你；`/privacy delete` 删除除退出选择以外的全部数据。",
        "**审核**：如果某个服务器开启了 moodbot 的审核，你退出后，你在被审核频道里的消息仍会被检查。审核是服务器的规则，不是数据分析：moodbot 不保存检查过的内容，提醒只会把消息展示给服务器的管理员。",
      ].join("\n"),
    optedOut: (days) =>
      `好了：你已在 moodbot 所在的所有服务器退出。从你的下一条消息起：不加情绪表情、不计数，你提到机器人时也不保存任何内容（它仍会回答）。之前保存的内容会在 ${days} 天内过期，或者现在用 \`/privacy delete\` 删除。`,
    optedIn: "好了：你已重新加入。你的消息会有情绪表情和计数，你和机器人的对话会被记住。",
    exported: (turns, servers) =>
      `这是 moodbot 保存的关于你的所有数据：你的 ${turns} 条消息，以及 ${servers} 个服务器里的情绪计数。`,
    exportedNothing:
      "moodbot 没有保存你的任何消息或情绪计数。下面的文件列出它保留的内容：你的退出选择（如果你选择过），以及删除记录（如果你要求过删除）。",
    deleted: (turns, erasure) =>
      `已删除：${turns} 条对话（你的消息和机器人对它们的回复）、你在所有服务器的情绪计数，以及记有你的 ID 的列表。${
        {
          erased: "它们也已从存储文件中抹去。",
          rewriting: "它们已从 Redis 中删除，并会在一小时内的下次重写时离开它的追加日志文件。",
          pending: "它们已从 Redis 中删除，并会在一小时内的下次重写时离开它的追加日志文件。",
          refused:
            "它们已从存储中删除；在机器人的运营者重写存储服务器自己的文件之前，副本仍留在这些文件里。运营者已收到通知。",
        }[erasure]
      }如果你选择过退出，退出选择会保留以继续有效：\`/privacy opt-in\` 会删除它。`,
    notDeleted: "我现在连不上存储，所以你保存的数据还没有删除。请过一分钟再运行一次 `/privacy delete`。",
    unavailable: "我现在连不上存储，没法完成这个操作，请过一分钟再试。",
  },
  moderation: {
    alertTitle: (label) => `疑似${label}`,
    author: "作者",
    channel: "频道",
    label: "类别",
    confidence: "置信度",
    jump: "跳转到消息",
    dryRun: "试运行：没有操作按钮。调好阈值后，用 /settings moderation mode:live 切换到正式模式。",
    deleteButton: "删除消息",
    timeoutButton: "禁言 10 分钟",
    dismissButton: "忽略",
    action: "处理",
    deleted: (by) => `消息已由 ${by} 删除。`,
    timedOut: (by) => `作者已被 ${by} 禁言 10 分钟。`,
    dismissed: (by) => `已由 ${by} 忽略。`,
    refusedRoleOrder:
      "Discord 拒绝了：作者的最高角色在 moodbot 之上，或 moodbot 缺少权限。请在服务器设置 → 角色里把 moodbot 的角色移到他们之上。",
    alreadyGone: "这条消息已经被删除了。",
    needs: (permission) => `你需要「${permission}」权限才能这样做。`,
    setup: (s) =>
      [
        `**审核：${s.mode}**`,
        `• 提醒发到：${s.alertChannel ?? "（未设置频道）"}`,
        `• 检查的频道：${s.channels.length === 0 ? "（无）" : s.channels.join("、")}`,
        `• 阈值：${s.threshold}`,
        `• 不检查的角色：${s.bypassRoles.length === 0 ? "（无）" : s.bypassRoles.join("、")}`,
        `${
          s.model.where === "this-machine"
            ? "审核使用本机自己的模型。"
            : `审核会把检查的每条消息发送到模型服务器 \`${s.model.host}\`，它的提示词缓存保存着这些文字，它的日志也可能保存。`
        }试运行只发提醒，不带按钮；正式模式加上删除、禁言和忽略按钮。用 /privacy 退出的成员仍会被检查：审核是服务器的规则，不是数据分析。`,
      ].join("\n"),
    unavailable: "审核不可用：机器人启动时没有加载 toxicity 任务（prompts/tasks/toxicity.json）。",
    noAlertChannel: "请先选择提醒频道：/settings moderation alert-channel:#频道。",
    paused:
      "审核已暂停：moodbot 的模型服务器现在无法使用，新消息暂时不会被检查。恢复检查时会在这里再发一条通知。",
    resumed: "审核已恢复：新消息又开始被检查了。",
  },
  settings: {
    guildOnly: "设置按服务器保存：请在服务器的频道里使用这个命令。",
    denied: "只有拥有「管理服务器」权限的成员才能修改机器人的设置。",
    inForce: "这个频道当前生效的设置：",
    unset: "（默认）",
    from: { channel: "频道", guild: "服务器" },
    where: { channel: "这个频道", guild: "这个服务器" },
    help: {
      reactions: "情绪表情：on 或 off",
      "reaction-share": "加表情的消息比例，0 到 100（%）",
      "emoji-positive": "正面的表情（unicode、<:name:id> 或 none）",
      "emoji-negative": "负面的表情（unicode、<:name:id> 或 none）",
      "emoji-neutral": "中性的表情（unicode、<:name:id> 或 none）",
      persona: "聊天时机器人的人设（系统提示词）",
      "chat-channel": "在这里不用提到我也回答每条消息：on 或 off",
      "reply-chain": "回复机器人的消息即使关闭了提及也算作提到它（保留提及的回复总是算）：on 或 off",
      language: "机器人在这里使用的语言：en 或 zh",
    },
    reset: (key, where) => `\`${key}\` 已在${where}恢复默认。`,
    changed: (key, value, where) => `\`${key}\` 在${where}已改为 \`${value}\`，从下一条消息开始生效。`,
    invalid: (key, help) => `\`${key}\` 不能取这个值：${help}。`,
    purgeConfirm:
      "这会删除 moodbot 为这个服务器保存的一切：每个频道的对话记录和情绪计数、成员在这里的情绪计数，以及所有设置。删除后无法恢复。",
    purgeButton: "全部删除",
    cancelButton: "取消",
    purged: (channels) =>
      `好了：moodbot 为这个服务器保存的一切都已删除（${channels} 个频道）。设置已恢复默认。`,
    purgeCancelled: "没有删除任何内容。",
  },
};

export const WORDING: Readonly<Record<Language, Wording>> = { en, zh };

/**
 * The one rule for which language the bot answers in: the channel's /settings language when an admin set one,
 * else the asker's Discord locale (commands have one, messages do not), else English.
 */
export function replyLanguage(setting: string | undefined, locale?: string | null): Language {
  if (setting === "en" || setting === "zh") return setting;
  return locale?.toLowerCase().startsWith("zh") ? "zh" : "en";
}

/** A share as people read it: 0.873 → "87%", or "87.3%" with one decimal. */
export function percent(value: number, decimals = 0): string {
  return `${(value * 100).toFixed(decimals)}%`;
}
