// The pairwise judge of AlpacaEval 2, "weighted_alpaca_eval_gpt4_turbo" (tatsu-lab/alpaca_eval,
// evaluators_configs/weighted_alpaca_eval_gpt4_turbo/configs.yaml): the prompt
// alpaca_eval_clf_gpt4_turbo/alpaca_eval_clf.txt, answered with one token, "m" (output_1 is better) or "M"
// (output_2 is better). The weighted preference reads the judge's top log-probabilities: 2 - P(m) / (P(m) + P(M))
// (logprob_parser, is_binarize false); a judge that gives only text is read as 1 for "m" and 2 for "M" (the
// binarized alpaca_eval_clf_gpt4_turbo reading). Preferences: 1 = output_1 wins, 2 = output_2 wins, 1.5 = draw.

/** The prompt template, byte for byte, in ChatML as alpaca_eval keeps it (system and user turns). */
export const ALPACA_EVAL_JUDGE_TEMPLATE = "<|im_start|>system\nYou are a highly efficient assistant, who evaluates and selects the best large language model (LLMs) based on the quality of their responses to a given instruction. This process will be used to create a leaderboard reflecting the most accurate and human-preferred answers.\n<|im_end|>\n<|im_start|>user\nI require a leaderboard for various large language models. I'll provide you with prompts given to these models and their corresponding outputs. Your task is to assess these responses, and select the model that produces the best output from a human perspective.\n\n## Instruction\n\n{\n    \"instruction\": \"\"\"{instruction}\"\"\",\n}\n\n## Model Outputs\n\nHere are the unordered outputs from the models. Each output is associated with a specific model, identified by a unique model identifier.\n\n{\n    {\n        \"model_identifier\": \"m\",\n        \"output\": \"\"\"{output_1}\"\"\"\n    },\n    {\n        \"model_identifier\": \"M\",\n        \"output\": \"\"\"{output_2}\"\"\"\n    }\n}\n\n## Task\n\nEvaluate the models based on the quality and relevance of their outputs, and select the model that generated the best output. Answer by providing the model identifier of the best model. We will use your output as the name of the best model, so make sure your output only contains one of the following model identifiers and nothing else (no quotes, no spaces, no new lines, ...): m or M.\n\n## Best Model Identifier\n<|im_end|>";

/** The judge's request settings in the reference: one token, log-probabilities of the 5 most likely. */
export const ALPACA_EVAL_JUDGE_MAX_TOKENS = 1;
export const ALPACA_EVAL_JUDGE_TOP_LOGPROBS = 5;
