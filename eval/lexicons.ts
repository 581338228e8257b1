import { createRequire } from "node:module";
import type Sentiment from "sentiment";
import type { SentimentLabel } from "../src/platform/sentimentLabels.js";

/*
 * The baselines that need no model: AFINN (the `sentiment` package), VADER (`vader-sentiment`), and a small
 * Chinese word list, so that the Chinese floor is a real one rather than "everything is neutral".
 */

const require = createRequire(import.meta.url);
const vader = require("vader-sentiment") as {
  SentimentIntensityAnalyzer: { polarity_scores(text: string): { compound: number } };
};

/** VADER's own convention: a compound score beyond ±0.05 carries a feeling. */
const VADER_NEUTRAL_BAND = 0.05;

export function afinnLabel(analyzer: Sentiment, text: string): SentimentLabel {
  const { score } = analyzer.analyze(text);
  return score > 0 ? "positive" : score < 0 ? "negative" : "neutral";
}

export function vaderLabel(text: string): SentimentLabel {
  const { compound } = vader.SentimentIntensityAnalyzer.polarity_scores(text);
  return compound >= VADER_NEUTRAL_BAND
    ? "positive"
    : compound <= -VADER_NEUTRAL_BAND
      ? "negative"
      : "neutral";
}

/**
 * Common Chinese chat words of feeling, written for this baseline from general usage (not from the eval set).
 * Longer words are matched first, so 不错 is not read as 不 + 错.
 */
const ZH_POSITIVE = [
  "开心",
  "高兴",
  "快乐",
  "喜欢",
  "爱了",
  "爱",
  "棒",
  "赞",
  "好玩",
  "好看",
  "好听",
  "漂亮",
  "厉害",
  "牛",
  "感谢",
  "谢谢",
  "恭喜",
  "祝贺",
  "幸福",
  "满意",
  "舒服",
  "可爱",
  "帅",
  "精彩",
  "完美",
  "优秀",
  "期待",
  "激动",
  "感动",
  "温暖",
  "不错",
  "太好了",
  "好耶",
  "哈哈",
  "笑死",
  "666",
  "yyds",
  "绝了",
  "顶",
  "稳",
  "值",
  "良心",
  "方便",
  "流畅",
  "清楚",
  "贴心",
  "友好",
  "辛苦了",
];
const ZH_NEGATIVE = [
  "难过",
  "伤心",
  "生气",
  "愤怒",
  "讨厌",
  "烦",
  "气死",
  "无语",
  "失望",
  "后悔",
  "累",
  "崩溃",
  "崩了",
  "垃圾",
  "烂",
  "差",
  "坑",
  "卡",
  "掉线",
  "闪退",
  "蓝屏",
  "bug",
  "骗",
  "倒霉",
  "孤独",
  "哭",
  "压力",
  "难用",
  "难听",
  "无聊",
  "离谱",
  "破防",
  "寄了",
  "下头",
  "恶心",
  "糟糕",
  "绝望",
  "尴尬",
  "不公平",
  "圈钱",
  "唉",
  "郁闷",
  "心态",
  "吐了",
  "送",
];
const ZH_NEGATORS = ["不", "没", "没有", "别", "一点都不", "一点也不", "并不", "根本不"];

/** A word list with negation: each word found counts ±1, flipped when a negator stands right before it. */
export function chineseLexiconLabel(text: string): SentimentLabel {
  const lower = text.toLowerCase();
  const words = [
    ...ZH_POSITIVE.map((word) => ({ word, sign: 1 })),
    ...ZH_NEGATIVE.map((word) => ({ word, sign: -1 })),
  ].sort((a, b) => b.word.length - a.word.length);
  const taken = new Array<boolean>(lower.length).fill(false);
  let score = 0;
  for (const { word, sign } of words) {
    for (let at = lower.indexOf(word); at >= 0; at = lower.indexOf(word, at + word.length)) {
      if (taken.slice(at, at + word.length).some(Boolean)) continue;
      taken.fill(true, at, at + word.length);
      const before = lower.slice(0, at);
      const negated = ZH_NEGATORS.some((negator) => before.endsWith(negator));
      score += negated ? -sign : sign;
    }
  }
  return score > 0 ? "positive" : score < 0 ? "negative" : "neutral";
}
