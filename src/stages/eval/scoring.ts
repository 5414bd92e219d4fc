// The scoring algorithms of evaluation, pure functions with no I/O: what the `evaluate` stage calls to render
// prompts, extract answers, judge verdicts and aggregate metrics. Each concept lives in its own file; this is the
// one import for the stage.
export { asScores, mean, meanStderr, meanWithStderr, sampleStddev, type MeanWithStderr } from "./stderr.js";
export {
  extractFlexible,
  extractStrict,
  GSM8K_INVALID,
  gsm8kExactMatch,
  gsm8kGold,
  gsm8kVerdict,
  normalizeGsm8k,
  type Gsm8kFilterVerdict,
  type Gsm8kVariant,
  type Gsm8kVerdict,
} from "./gsm8k-extract.js";
export {
  GSM8K_COT_EXEMPLARS,
  GSM8K_COT_STOP,
  GSM8K_STOP,
  gsm8kStop,
  renderGsm8kCotPrompt,
  renderGsm8kPrompt,
  type Gsm8kShot,
} from "./gsm8k-prompt.js";
export {
  formatMmluExample,
  formatSubject,
  MMLU_CONTINUATIONS,
  MMLU_LABELS,
  mmluHeader,
  mmluPrediction,
  renderMmluPrompt,
  type MmluItem,
  type MmluPromptOptions,
  type MmluPromptStyle,
} from "./mmlu-prompt.js";
export { isMmluSubject, MMLU_CATEGORY_NAMES, MMLU_SUBJECTS, mmluCategory, mmluSubcategory, type MmluCategory } from "./mmlu-subjects.js";
export { mmluAccuracy, type Accuracy, type GroupAccuracy, type MmluAccuracy, type MmluResult } from "./mmlu-accuracy.js";
export { IFEVAL_INSTRUCTION_IDS, ifevalChecker, isIfevalInstruction, type IfevalCheck, type IfevalKwargs } from "./ifeval/checkers.js";
export { ifevalCheckers, ifevalVerdict, looseVariants, type IfevalItem, type IfevalVerdict } from "./ifeval/verdict.js";
export { ifevalMetrics, type IfevalInstructionAccuracy, type IfevalMetrics, type IfevalScored } from "./ifeval/metrics.js";
export { punktSentences } from "./ifeval/punkt.js";
export { treebankTokens, wordTokenize } from "./ifeval/word-tokenize.js";
export { detectLanguage } from "./ifeval/language.js";
export {
  MT_BENCH_CATEGORIES,
  MT_BENCH_JUDGE_MAX_TOKENS,
  MT_BENCH_JUDGE_TEMPERATURE,
  MT_BENCH_REFERENCE_CATEGORIES,
  mtBenchJudgePrompt,
  mtBenchScores,
  needsReference,
  parseMtBenchRating,
  type MtBenchJudgePrompt,
  type MtBenchQuestion,
  type MtBenchRating,
  type MtBenchScore,
  type MtBenchScores,
} from "./mt-bench.js";
export { SINGLE_MATH_V1, SINGLE_MATH_V1_MULTI_TURN, SINGLE_V1, SINGLE_V1_MULTI_TURN, type MtBenchJudgeTemplate } from "./mt-bench-prompts.js";
export { ALPACA_EVAL_JUDGE_MAX_TOKENS, ALPACA_EVAL_JUDGE_TEMPLATE, ALPACA_EVAL_JUDGE_TOP_LOGPROBS } from "./alpaca-eval-prompt.js";
export {
  alpacaJudgePrompt,
  alpacaJudgePrompts,
  alpacaPreferenceFromLogprobs,
  alpacaWinRate,
  combineOrders,
  parseAlpacaPreference,
  type AlpacaJudgeMessage,
  type AlpacaJudgePrompt,
  type AlpacaWinRate,
} from "./alpaca-eval.js";
export { fitSoftLogistic, lengthControlledWinRate, type AlpacaGlmRow, type GlmOptions, type LengthControlled } from "./alpaca-glm.js";
