import type { RefusalReason } from "./chatGate.js";
import type { SentimentLabel } from "./sentimentLabels.js";
import type { SettingKey } from "./store/settings.js";

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
  readonly helpTitle: string;
  readonly helpBody: readonly string[];
  readonly helpCommands: string;
  readonly analyzeHint: string;
  /** /mood */
  readonly moodSummary: (week: boolean, summary: string) => string;
  /** Drawn into the chart image, whose font has Latin letters only. */
  readonly moodChartTitle: (week: boolean) => string;
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
  };
}

const en: Wording = {
  labels: { positive: "positive", negative: "negative", neutral: "neutral" },
  emptyReply: "I couldn't come up with a reply to that. Could you rephrase it?",
  emptyMention: "Hi! Mention me with a message and I'll answer. Try `/sentiment` to read a text's mood.",
  chatError: "Sorry, something went wrong while I was thinking. Please try again in a moment.",
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
  helpTitle: "**moodbot**: one small language model, running on this server's own machine.",
  helpBody: [
    "• I react to messages with their mood (positive / negative / neutral).",
    "• Mention me to chat; I remember this channel's recent conversation.",
  ],
  helpCommands: "Commands:",
  analyzeHint: "Right-click a message → Apps → **Analyze mood** to read its mood privately.",
  moodSummary: (week, summary) => `**Mood over the last ${week ? "7 days" : "24 hours"}**: ${summary}`,
  moodChartTitle: (week) => `Mood, last ${week ? "7 days" : "24 hours"} (UTC)`,
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
      "reply-chain": "a reply to the bot's message counts as a mention: on or off",
      language: "the bot's own language here: en or zh",
    },
    reset: (key, where) => `\`${key}\` is back to its default for ${where}.`,
    changed: (key, value, where) =>
      `\`${key}\` is now \`${value}\` for ${where}. It applies from the next message.`,
    invalid: (key, help) => `\`${key}\` cannot take that value: ${help}.`,
  },
};

const zh: Wording = {
  labels: { positive: "正面", negative: "负面", neutral: "中性" },
  emptyReply: "这个我想不出怎么回答，能换个说法吗？",
  emptyMention: "你好！提到我并附上一句话，我就会回答。试试 `/sentiment` 读出一段文字的情绪。",
  chatError: "抱歉，我思考的时候出了点问题，请稍后再试。",
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
  helpTitle: "**moodbot**：一个小型语言模型，运行在这个服务器自己的机器上。",
  helpBody: [
    "• 我会给消息加上情绪表情（正面 / 负面 / 中性）。",
    "• 提到我就可以聊天；我会记得这个频道最近的对话。",
  ],
  helpCommands: "命令：",
  analyzeHint: "右键点一条消息 → 应用 → **分析情绪**，可以私下查看它的情绪。",
  moodSummary: (week, summary) => `**最近${week ? " 7 天" : " 24 小时"}的情绪**：${summary}`,
  moodChartTitle: (week) => `Mood, last ${week ? "7 days" : "24 hours"} (UTC)`,
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
      "reply-chain": "回复机器人的消息算作提到它：on 或 off",
      language: "机器人在这里使用的语言：en 或 zh",
    },
    reset: (key, where) => `\`${key}\` 已在${where}恢复默认。`,
    changed: (key, value, where) => `\`${key}\` 在${where}已改为 \`${value}\`，从下一条消息开始生效。`,
    invalid: (key, help) => `\`${key}\` 不能取这个值：${help}。`,
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
