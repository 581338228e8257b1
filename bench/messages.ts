import type { ChatTurn } from "../src/prompts/prompts.js";
/**
 * Discord-style messages for the benchmark, English and Chinese, written for this project. Timings depend on
 * token counts, so the mix has the lengths real servers have: mostly short, some long.
 */
export const BENCH_MESSAGES: readonly string[] = [
  "lol",
  "gg",
  "ok",
  "哈哈",
  "+1",
  "this patch is actually so good, thank you devs 🙏",
  "why does the server keep lagging every evening, it's unplayable",
  "anyone up for ranked in 10 min?",
  "not bad at all, the new map grew on me",
  "I lost my whole save file. I'm done with this game.",
  "does anyone know how to fix `npm ERR! code ERESOLVE`?",
  "happy birthday @everyone who was born today 🎂",
  "ngl that boss fight was kinda mid",
  "the art in this update is gorgeous, whoever drew the new icons is a legend",
  "brb dinner",
  "stop spamming the channel please",
  "我觉得这个更新还不错",
  "服务器又崩了，真的无语",
  "今晚八点开会，记得准时",
  "太好玩了吧！！！",
  "有人知道这个报错怎么解决吗？",
  "这个活动奖励也太少了，白肝了一周",
  "谢谢大佬，问题解决了 🙏",
  "草",
  "明天见",
  "是不是只有我觉得新版本的界面很难用？",
  "yo what's the wifi password at the venue",
  "honestly the mods here are the best, you all keep this place chill",
  "I'm so tired of people cheating in tournaments",
  "```js\nconst x = await fetch(url);\nconsole.log(await x.json());\n```\nwhy is this undefined",
  "can't wait for the weekend!!!",
  "meh",
  "这首歌太好听了，单曲循环一整天",
  "排队排了两个小时还没进去，心态崩了",
  "wait so is the event today or tomorrow?",
  "that was the most disappointing finale I've ever watched",
  "welcome to the server! read the rules in #info",
  "好的收到",
  "I mean it's fine I guess, nothing special",
  "THIS IS THE BEST DAY EVER",
];

/** Messages that repeat constantly in real channels; they dominate a realistic stream. */
const COMMON: readonly string[] = [
  "ok",
  "lol",
  "gg",
  "哈哈",
  "+1",
  "lmao",
  "好的",
  "草",
  "?",
  "thx",
  "nice",
  "ty",
  "LOL",
  "ok ",
];

/**
 * A realistic stream for the result cache: about half the messages are short and common, the rest unique.
 * Deterministic, so every run measures the same stream.
 */
export function realisticStream(length: number): string[] {
  let state = 12345;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const stream: string[] = [];
  for (let i = 0; i < length; i++) {
    if (random() < 0.5) {
      // Zipf-like: the first common messages are much more frequent than the last.
      const index = Math.floor(COMMON.length * random() ** 2);
      stream.push(COMMON[index] ?? "ok");
    } else {
      const base = BENCH_MESSAGES[Math.floor(random() * BENCH_MESSAGES.length)] ?? "hello";
      stream.push(`${base} ${i}`);
    }
  }
  return stream;
}

/** A channel's last ten turns, in the shape the chat prompt takes them: the history of every chat figure. */
export function tenTurnHistory(): ChatTurn[] {
  const lines: Array<[string, string]> = [
    [
      "alice: anyone know when the tournament starts?",
      "It starts Saturday at 18:00 UTC, check #events for the bracket.",
    ],
    ["bob: can I still sign up?", "Yes, sign-ups close Friday night. Use the form pinned in #events."],
    ["carol: 我可以和朋友组队吗？", "可以，每队最多三个人，报名时填上队友的名字就行。"],
    [
      "alice: what are the prizes this time?",
      "First place gets a custom role and the winners' badge on the server.",
    ],
    ["bob: nice, is there a stream?", "There is, on the server's stage channel, with two casters."],
  ];
  return lines.flatMap(([user, reply]) => [
    { role: "user" as const, text: user },
    { role: "assistant" as const, text: reply },
  ]);
}
