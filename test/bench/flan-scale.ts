/**
 * A Flan-2022-scale recipe: 1,836 task sources, each templated into four variants, one sub-mixture per collection
 * (Flan 2021, T0-SF, NIV2, CoT, Dialog) with per-task caps, and the final weighted mixture. ~9,200 stages.
 */
export const collections = [
  { name: "flan2021", tasks: 80, cap: 30_000, weight: 0.4, variants: ["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"] },
  { name: "t0", tasks: 193, cap: 20_000, weight: 0.32, variants: ["zs_opt", "zs_noopt", "fs_opt", "fs_noopt"] },
  { name: "niv2", tasks: 1554, cap: 5_000, weight: 0.2, variants: ["zs_opt", "fs_opt"] },
  { name: "cot", tasks: 9, cap: 100_000, weight: 0.05, variants: ["zs_opt", "fs_opt"] },
] as const;

export function flanScaleRecipe(): { text: string; stages: number } {
  const out: string[] = ["// Generated: a Flan 2022-scale mixture for benchmarks.", ""];
  let stages = 0;
  const subMixes: string[] = [];
  for (const c of collections) {
    const comps: string[] = [];
    for (let t = 0; t < c.tasks; t++) {
      const task = `${c.name}_task${t}`;
      out.push(`dataset ${task}: FlanExample = jsonl("data/flan/${c.name}/${t}.jsonl")`, "");
      stages++;
      // Four template variants per task (NIV2 and CoT use two, doubled with other template files, to keep 4).
      for (let v = 0; v < 4; v++) {
        const variant = c.variants[v % c.variants.length]!;
        const name = `${task}_v${v}`;
        out.push(`filter ${name} = flan_templates(${task}) {`, `  task = "${task}"`, `  variants = ["${variant}"]`, `  templates = "templates/${c.name}.json"`, `  seed = ${v}`, "}", "");
        stages++;
        comps.push(`  ${name}: rate(maximum: ${c.cap})`);
      }
    }
    out.push(`mix ${c.name}_mix = mix(seed: 42, total: 1_000_000) {`, ...comps, "}", "");
    stages++;
    subMixes.push(`  ${c.name}_mix: weight(${c.weight})`);
  }
  out.push("dataset dialog: FlanExample = jsonl(\"data/flan/dialog.jsonl\")", "");
  out.push("filter dialog_t = flan_templates(dialog) {", '  task = "dialog"', '  templates = "templates/dialog.json"', "}", "");
  stages += 2;
  subMixes.push("  dialog_t: weight(0.03)");
  out.push("mix flan2022 = mix(seed: 42, mode: \"weight\", total: 1_000_000) {", ...subMixes, "}", "");
  stages++;
  return { text: out.join("\n"), stages };
}
