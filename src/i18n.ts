import type { SentimentLabel } from "./moodEmojis.js";

/** The bot speaks English and Chinese; everything else falls back to English. */
export type Language = "en" | "zh";

export function languageOf(locale: string | null | undefined): Language {
  return locale?.toLowerCase().startsWith("zh") ? "zh" : "en";
}

export const LABEL_NAMES: Readonly<Record<Language, Readonly<Record<SentimentLabel, string>>>> = {
  en: { positive: "positive", negative: "negative", neutral: "neutral" },
  zh: { positive: "正面", negative: "负面", neutral: "中性" },
};

/** The bot's chat notices in Chinese; the English ones live beside the code that sends them. */
export const ZH_NOTICES = {
  emptyReply: "这个我想不出怎么回答，能换个说法吗？",
  emptyMention: "你好！提到我并附上一句话，我就会回答。试试 `/sentiment` 读出一段文字的情绪。",
  chatError: "抱歉，我思考的时候出了点问题，请稍后再试。",
  refusal: {
    "user-rate": "你发消息太快啦，我想不过来！过一分钟再试吧。🙂",
    "channel-rate": "这个频道让我忙不过来了，过一分钟再试吧。🙂",
    busy: "这里还有几条消息等着我回答，等我回复完再问我吧。🙂",
  },
} as const;

/** The bot's own words, by language. Kept together so a translation never drifts from its English. */
export const TEXTS = {
  en: {
    confidence: (percent: string) => `(confidence ${percent})`,
    noText: "There is no text to read there. Try `/sentiment text: what a great day!`",
    noTextInMessage: "That message has no text I can read (only attachments, stickers or embeds).",
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
    noAnswer: "I had nothing to say about that. Try again with more to go on.",
  },
  zh: {
    confidence: (percent: string) => `（置信度 ${percent}）`,
    noText: "这里没有可以读的文字。试试 `/sentiment text: 今天真开心！`",
    noTextInMessage: "这条消息没有我能读的文字（只有附件、贴纸或嵌入内容）。",
    forgotten: "好了：我已经忘掉这个频道的对话，下次提到我会重新开始。",
    forgetDenied: "只有拥有「管理消息」权限（或机器人管理员指定角色）的成员才能清除对话。",
    helpTitle: "**moodbot**：一个小型语言模型，运行在这个服务器自己的机器上。",
    helpBody: [
      "• 我会给消息加上情绪表情（正面 / 负面 / 中性）。",
      "• 提到我就可以聊天；我会记得这个频道最近的对话。",
    ],
    helpCommands: "命令：",
    analyzeHint: "右键点一条消息 → 应用 → **分析情绪**，可以私下查看它的情绪。",
    noAnswer: "这个我没什么可说的，多给我一点内容再试试。",
  },
} as const;
