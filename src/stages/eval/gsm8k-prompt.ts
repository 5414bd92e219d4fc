// GSM8K prompts as lm-evaluation-harness renders them (lm_eval/tasks/gsm8k/gsm8k.yaml and gsm8k-cot.yaml, v3.0;
// lm_eval/api/task.py fewshot_context): each shot is `doc_to_text + " " + target + "\n\n"`, then the question's
// `doc_to_text` with nothing after it.
// - gsm8k: "Question: {question}\nAnswer:", shots drawn from train with their full solutions (ending "#### n") as
//   targets; generation stops at "Question:", "</s>", "<|im_end|>".
// - gsm8k-cot: "Q: {question}\nA:", the 8 fixed chain-of-thought exemplars of Wei et al. (first n of them), each
//   ending "The answer is n."; generation stops at "Q:", "</s>", "<|im_end|>".
import type { Gsm8kVariant } from "./gsm8k-extract.js";

export interface Gsm8kShot {
  readonly question: string;
  /** The target: a full solution (gsm8k) or a chain of thought ending "The answer is n." (gsm8k-cot). */
  readonly answer: string;
}

export const GSM8K_STOP: readonly string[] = ["Question:", "</s>", "<|im_end|>"];
export const GSM8K_COT_STOP: readonly string[] = ["Q:", "</s>", "<|im_end|>"];

/** The stop sequences of a variant. */
export function gsm8kStop(variant: Gsm8kVariant): readonly string[] {
  return variant === "gsm8k-cot" ? GSM8K_COT_STOP : GSM8K_STOP;
}

/** The 8 exemplars of gsm8k-cot (lm-eval's `fewshot_config.samples`, sampler first_n). */
export const GSM8K_COT_EXEMPLARS: readonly Gsm8kShot[] = [
  {
    question: "There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there will be 21 trees. How many trees did the grove workers plant today?",
    answer: "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been 21 - 15 = 6. The answer is 6.",
  },
  {
    question: "If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
    answer: "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5.",
  },
  {
    question: "Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
    answer: "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, they had 74 - 35 = 39. The answer is 39.",
  },
  {
    question: "Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason give to Denny?",
    answer: "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The answer is 8.",
  },
  {
    question: "Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
    answer: "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. The answer is 9.",
  },
  {
    question: "There were nine computers in the server room. Five more computers were installed each day, from monday to thursday. How many computers are now in the server room?",
    answer: "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers were added. 9 + 20 is 29. The answer is 29.",
  },
  {
    question: "Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls did he have at the end of wednesday?",
    answer: "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he had 35 - 2 = 33 golf balls. The answer is 33.",
  },
  {
    question: "Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
    answer: "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars left. 23 - 15 is 8. The answer is 8.",
  },
];

function render(text: (q: string) => string, question: string, shots: readonly Gsm8kShot[]): string {
  let out = "";
  for (const s of shots) out += `${text(s.question)} ${s.answer}\n\n`;
  return out + text(question);
}

const gsm8kText = (q: string) => `Question: ${q}\nAnswer:`;
const cotText = (q: string) => `Q: ${q}\nA:`;

/** lm-eval `gsm8k`: the given shots (questions and full solutions from train, chosen by the caller), then the question. */
export function renderGsm8kPrompt(question: string, shots: readonly Gsm8kShot[]): string {
  return render(gsm8kText, question, shots);
}

/** lm-eval `gsm8k-cot`: the first `shots` (default all 8) fixed exemplars, then the question. */
export function renderGsm8kCotPrompt(question: string, shots = GSM8K_COT_EXEMPLARS.length): string {
  if (!Number.isInteger(shots) || shots < 0 || shots > GSM8K_COT_EXEMPLARS.length) {
    throw new RangeError(`gsm8k-cot has ${GSM8K_COT_EXEMPLARS.length} exemplars; ${shots} shots asked`);
  }
  return render(cotText, question, GSM8K_COT_EXEMPLARS.slice(0, shots));
}
