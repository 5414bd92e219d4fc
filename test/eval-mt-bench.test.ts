import { describe, expect, it } from "vitest";
import { MT_BENCH_CATEGORIES, mtBenchJudgePrompt, mtBenchScores, needsReference, parseMtBenchRating, type MtBenchQuestion } from "../src/stages/eval/mt-bench.js";

// Questions of the three reference-guided categories and one plain one; braces in answers and references must
// come through untouched.
const QUESTIONS: MtBenchQuestion[] = [
  {
    "question_id": 111,
    "category": "math",
    "turns": [
      "The vertices of a triangle are at points (0, 0), (-1, 1), and (3, 3). What is the area of the triangle?",
      "What's area of the circle circumscribing the triangle?"
    ],
    "reference": [
      "Area is 3",
      "5pi"
    ]
  },
  {
    "question_id": 101,
    "category": "reasoning",
    "turns": [
      "Imagine you are participating in a race with a group of people. If you have just overtaken the second person, what's your current position?",
      "If the \"second person\" is changed to \"last person\" in the above question, what would the answer be?"
    ],
    "reference": [
      "You are in second place.",
      "Uncertain."
    ]
  },
  {
    "question_id": 121,
    "category": "coding",
    "turns": [
      "Develop a Python program that reads all the text files under a directory and returns top-5 words with the most number of occurrences.",
      "Can you parallelize it?"
    ],
    "reference": [
      "Can be simple solutions like using Counter\n\n```python\nfrom collections import Counter\n```",
      "You should carefully check {braces} in the code."
    ]
  },
  {
    "question_id": 81,
    "category": "writing",
    "turns": [
      "Compose an engaging travel blog post about a recent trip to Hawaii.",
      "Rewrite your previous response. Start every sentence with the letter A."
    ]
  }
];
const ANSWERS = ["First answer with {curly} braces.", "Second answer."];

// [question id, turn, judge template, system prompt, user prompt]: rendered by Python str.format on FastChat's
// judge_prompts.jsonl, choosing the template as common.py/gen_judgment.py do (NEED_REF_CATS, multi_turn).
const EXPECTED: [number, 1 | 2, string, string, string][] = [
  [111, 1, "single-math-v1", "You are a helpful assistant.", "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below. Your evaluation should consider correctness and helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\nThe vertices of a triangle are at points (0, 0), (-1, 1), and (3, 3). What is the area of the triangle?\n\n[The Start of Reference Answer]\nArea is 3\n[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\nFirst answer with {curly} braces.\n[The End of Assistant's Answer]"],
  [111, 2, "single-math-v1-multi-turn", "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question. Your evaluation should consider correctness and helpfulness. You will be given a reference answer and the assistant's answer. You evaluation should focus on the assistant's answer to the second question. Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n", "<|The Start of Reference Answer|>\n\n### User:\nThe vertices of a triangle are at points (0, 0), (-1, 1), and (3, 3). What is the area of the triangle?\n\n### Reference answer:\nArea is 3\n\n### User:\nWhat's area of the circle circumscribing the triangle?\n\n### Reference answer:\n5pi\n\n<|The End of Reference Answer|>\n\n\n<|The Start of Assistant A's Conversation with User|>\n\n### User:\nThe vertices of a triangle are at points (0, 0), (-1, 1), and (3, 3). What is the area of the triangle?\n\n### Assistant A:\nFirst answer with {curly} braces.\n\n### User:\nWhat's area of the circle circumscribing the triangle?\n\n### Assistant A:\nSecond answer.\n\n<|The End of Assistant A's Conversation with User|>"],
  [101, 1, "single-math-v1", "You are a helpful assistant.", "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below. Your evaluation should consider correctness and helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\nImagine you are participating in a race with a group of people. If you have just overtaken the second person, what's your current position?\n\n[The Start of Reference Answer]\nYou are in second place.\n[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\nFirst answer with {curly} braces.\n[The End of Assistant's Answer]"],
  [101, 2, "single-math-v1-multi-turn", "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question. Your evaluation should consider correctness and helpfulness. You will be given a reference answer and the assistant's answer. You evaluation should focus on the assistant's answer to the second question. Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n", "<|The Start of Reference Answer|>\n\n### User:\nImagine you are participating in a race with a group of people. If you have just overtaken the second person, what's your current position?\n\n### Reference answer:\nYou are in second place.\n\n### User:\nIf the \"second person\" is changed to \"last person\" in the above question, what would the answer be?\n\n### Reference answer:\nUncertain.\n\n<|The End of Reference Answer|>\n\n\n<|The Start of Assistant A's Conversation with User|>\n\n### User:\nImagine you are participating in a race with a group of people. If you have just overtaken the second person, what's your current position?\n\n### Assistant A:\nFirst answer with {curly} braces.\n\n### User:\nIf the \"second person\" is changed to \"last person\" in the above question, what would the answer be?\n\n### Assistant A:\nSecond answer.\n\n<|The End of Assistant A's Conversation with User|>"],
  [121, 1, "single-math-v1", "You are a helpful assistant.", "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below. Your evaluation should consider correctness and helpfulness. You will be given a reference answer and the assistant's answer. Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\nDevelop a Python program that reads all the text files under a directory and returns top-5 words with the most number of occurrences.\n\n[The Start of Reference Answer]\nCan be simple solutions like using Counter\n\n```python\nfrom collections import Counter\n```\n[The End of Reference Answer]\n\n[The Start of Assistant's Answer]\nFirst answer with {curly} braces.\n[The End of Assistant's Answer]"],
  [121, 2, "single-math-v1-multi-turn", "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question. Your evaluation should consider correctness and helpfulness. You will be given a reference answer and the assistant's answer. You evaluation should focus on the assistant's answer to the second question. Begin your evaluation by comparing the assistant's answer with the reference answer. Identify and correct any mistakes. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n", "<|The Start of Reference Answer|>\n\n### User:\nDevelop a Python program that reads all the text files under a directory and returns top-5 words with the most number of occurrences.\n\n### Reference answer:\nCan be simple solutions like using Counter\n\n```python\nfrom collections import Counter\n```\n\n### User:\nCan you parallelize it?\n\n### Reference answer:\nYou should carefully check {braces} in the code.\n\n<|The End of Reference Answer|>\n\n\n<|The Start of Assistant A's Conversation with User|>\n\n### User:\nDevelop a Python program that reads all the text files under a directory and returns top-5 words with the most number of occurrences.\n\n### Assistant A:\nFirst answer with {curly} braces.\n\n### User:\nCan you parallelize it?\n\n### Assistant A:\nSecond answer.\n\n<|The End of Assistant A's Conversation with User|>"],
  [81, 1, "single-v1", "You are a helpful assistant.", "[Instruction]\nPlease act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. Begin your evaluation by providing a short explanation. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n[Question]\nCompose an engaging travel blog post about a recent trip to Hawaii.\n\n[The Start of Assistant's Answer]\nFirst answer with {curly} braces.\n[The End of Assistant's Answer]"],
  [81, 2, "single-v1-multi-turn", "Please act as an impartial judge and evaluate the quality of the response provided by an AI assistant to the user question displayed below. Your evaluation should consider factors such as the helpfulness, relevance, accuracy, depth, creativity, and level of detail of the response. You evaluation should focus on the assistant's answer to the second user question. Begin your evaluation by providing a short explanation. Be as objective as possible. After providing your explanation, you must rate the response on a scale of 1 to 10 by strictly following this format: \"[[rating]]\", for example: \"Rating: [[5]]\".\n\n", "<|The Start of Assistant A's Conversation with User|>\n\n### User:\nCompose an engaging travel blog post about a recent trip to Hawaii.\n\n### Assistant A:\nFirst answer with {curly} braces.\n\n### User:\nRewrite your previous response. Start every sentence with the letter A.\n\n### Assistant A:\nSecond answer.\n\n<|The End of Assistant A's Conversation with User|>"],
];

// [judgment, rating]: ratings from FastChat's one_score_pattern / one_score_pattern_backup and ast.literal_eval.
const JUDGMENTS: [string, number][] = [["The answer is fine. Rating: [[8]]",8],["Good but verbose. Rating: [[8.5]]",8.5],["Rating: [[10]]",10],["I would give it [7] overall.",7],["No rating given.",-1],["Rating: [[3]] then later [[9]]",3],["Rating: [5] and [[6]]",6],["Rating: [[8.]]",8],["[[ 7 ]] has spaces",-1],["Score [[-2]]",-1],["Rating: [[1]]",1],["[[0.5]]",0.5]];

describe("MT-Bench judge prompts", () => {
  it.each(EXPECTED)("question %s turn %s uses %s, byte for byte", (id, turn, judge, system, user) => {
    const q = QUESTIONS.find((x) => x.question_id === id)!;
    const p = mtBenchJudgePrompt(q, ANSWERS, turn);
    expect(p.judge).toBe(judge);
    expect(p.system).toBe(system);
    expect(p.user).toBe(user);
    expect(p.messages).toEqual([{ role: "system", content: system }, { role: "user", content: user }]);
  });

  it("guides math, reasoning and coding with references, and refuses them without", () => {
    expect(MT_BENCH_CATEGORIES.filter(needsReference)).toEqual(["reasoning", "math", "coding"]);
    const noRef = { ...QUESTIONS[0]!, reference: undefined };
    expect(() => mtBenchJudgePrompt(noRef, ANSWERS, 1)).toThrow(/no reference answer for turn 1/);
    expect(() => mtBenchJudgePrompt({ ...QUESTIONS[0]!, reference: ["only one"] }, ANSWERS, 2)).toThrow(/turn 2/);
    expect(() => mtBenchJudgePrompt(QUESTIONS[3]!, ["one answer"], 2)).toThrow(/needs 2 answer/);
  });
});

describe("MT-Bench ratings", () => {
  it.each(JUDGMENTS)("%j rates %s", (judgment, rating) => {
    expect(parseMtBenchRating(judgment)).toBe(rating);
  });

  it("averages parsed ratings per turn, per category and overall, leaving out unparsed ones", () => {
    const s = mtBenchScores([
      { category: "math", turn: 1, rating: 8 },
      { category: "math", turn: 2, rating: 6 },
      { category: "writing", turn: 1, rating: 9 },
      { category: "writing", turn: 2, rating: -1 },
      { category: "coding", turn: 1, rating: 4 },
      { category: "coding", turn: 2, rating: 5.5 },
    ]);
    expect(s.unparsed).toBe(1);
    expect(s.overall.score).toBeCloseTo((8 + 6 + 9 + 4 + 5.5) / 5, 12);
    expect(s.overall.n).toBe(5);
    expect(s.turn1.score).toBeCloseTo(7, 12);
    expect(s.turn2.score).toBeCloseTo(5.75, 12);
    expect(Object.keys(s.categories)).toEqual(["writing", "math", "coding"]);
    expect(s.categories.math).toEqual({ score: 7, stderr: 1, n: 2 });
    expect(s.categories.writing!.score).toBe(9);
    expect(s.categories.writing!.stderr).toBeNaN();
  });
});
