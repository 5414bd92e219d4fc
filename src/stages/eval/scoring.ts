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
