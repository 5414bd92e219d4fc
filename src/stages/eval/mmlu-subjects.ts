// The 57 MMLU subjects, their subcategories and their four categories, from the reference mapping of
// hendrycks/test (categories.py: `subcategories` and `categories`). lm-evaluation-harness groups a few subjects
// differently (e.g. anatomy is STEM there, "health" hence "other" here); this file follows the original.

/** The four MMLU categories (hendrycks/test names: "STEM", "humanities", "social sciences", "other (business, health, misc.)"). */
export type MmluCategory = "stem" | "humanities" | "social_sciences" | "other";

export const MMLU_CATEGORY_NAMES: Readonly<Record<MmluCategory, string>> = {
  stem: "STEM",
  humanities: "humanities",
  social_sciences: "social sciences",
  other: "other (business, health, misc.)",
};

/** Subject (the dataset's config name) -> [subcategory, category]. */
const SUBJECTS: Readonly<Record<string, readonly [string, MmluCategory]>> = {
  abstract_algebra: ["math", "stem"],
  anatomy: ["health", "other"],
  astronomy: ["physics", "stem"],
  business_ethics: ["business", "other"],
  clinical_knowledge: ["health", "other"],
  college_biology: ["biology", "stem"],
  college_chemistry: ["chemistry", "stem"],
  college_computer_science: ["computer science", "stem"],
  college_mathematics: ["math", "stem"],
  college_medicine: ["health", "other"],
  college_physics: ["physics", "stem"],
  computer_security: ["computer science", "stem"],
  conceptual_physics: ["physics", "stem"],
  econometrics: ["economics", "social_sciences"],
  electrical_engineering: ["engineering", "stem"],
  elementary_mathematics: ["math", "stem"],
  formal_logic: ["philosophy", "humanities"],
  global_facts: ["other", "other"],
  high_school_biology: ["biology", "stem"],
  high_school_chemistry: ["chemistry", "stem"],
  high_school_computer_science: ["computer science", "stem"],
  high_school_european_history: ["history", "humanities"],
  high_school_geography: ["geography", "social_sciences"],
  high_school_government_and_politics: ["politics", "social_sciences"],
  high_school_macroeconomics: ["economics", "social_sciences"],
  high_school_mathematics: ["math", "stem"],
  high_school_microeconomics: ["economics", "social_sciences"],
  high_school_physics: ["physics", "stem"],
  high_school_psychology: ["psychology", "social_sciences"],
  high_school_statistics: ["math", "stem"],
  high_school_us_history: ["history", "humanities"],
  high_school_world_history: ["history", "humanities"],
  human_aging: ["health", "other"],
  human_sexuality: ["culture", "social_sciences"],
  international_law: ["law", "humanities"],
  jurisprudence: ["law", "humanities"],
  logical_fallacies: ["philosophy", "humanities"],
  machine_learning: ["computer science", "stem"],
  management: ["business", "other"],
  marketing: ["business", "other"],
  medical_genetics: ["health", "other"],
  miscellaneous: ["other", "other"],
  moral_disputes: ["philosophy", "humanities"],
  moral_scenarios: ["philosophy", "humanities"],
  nutrition: ["health", "other"],
  philosophy: ["philosophy", "humanities"],
  prehistory: ["history", "humanities"],
  professional_accounting: ["other", "other"],
  professional_law: ["law", "humanities"],
  professional_medicine: ["health", "other"],
  professional_psychology: ["psychology", "social_sciences"],
  public_relations: ["politics", "social_sciences"],
  security_studies: ["politics", "social_sciences"],
  sociology: ["culture", "social_sciences"],
  us_foreign_policy: ["politics", "social_sciences"],
  virology: ["health", "other"],
  world_religions: ["philosophy", "humanities"],
};

/** All 57 subject names, in the reference's order (alphabetical). */
export const MMLU_SUBJECTS: readonly string[] = Object.keys(SUBJECTS);

export function isMmluSubject(subject: string): boolean {
  return Object.hasOwn(SUBJECTS, subject);
}

/** The category of a subject; undefined for a subject MMLU does not have. */
export function mmluCategory(subject: string): MmluCategory | undefined {
  return Object.hasOwn(SUBJECTS, subject) ? SUBJECTS[subject]![1] : undefined;
}

/** The subcategory of a subject (e.g. "math", "health"); undefined for a subject MMLU does not have. */
export function mmluSubcategory(subject: string): string | undefined {
  return Object.hasOwn(SUBJECTS, subject) ? SUBJECTS[subject]![0] : undefined;
}
