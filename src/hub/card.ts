import { didYouMean } from "../diagnostics/suggest.js";
import { UserError } from "../core/errors.js";
import { frontMatter, parseYaml, YamlError, type Yaml } from "./yaml.js";

/**
 * The `configs:` section of a dataset card (README.md's YAML header), the "manual configuration" of the Hub:
 *
 *     configs:
 *     - config_name: default
 *       data_files:
 *       - split: train
 *         path: data/train-*
 *     - config_name: other
 *       data_dir: other
 *       data_files: "*.csv"        # a string or a list of strings is the train split
 *
 * Only that section is parsed: the rest of the header (`dataset_info`, licences, tags) is not needed and may use
 * YAML this reader does not support.
 */
export interface CardConfig {
  readonly name: string;
  readonly isDefault: boolean;
  readonly dataDir?: string;
  /** Split -> patterns, in the card's order; undefined: the default patterns inside dataDir. */
  readonly dataFiles?: ReadonlyMap<string, readonly string[]>;
}

/** The card's configurations, or undefined when it declares none. `shown` names the card in errors. */
export function cardConfigs(markdown: string, shown: string): CardConfig[] | undefined {
  const fm = frontMatter(markdown);
  if (!fm) return undefined;
  const block = configsBlock(fm.yaml);
  if (!block) return undefined;
  let parsed: Yaml;
  try {
    parsed = parseYaml(block.text, fm.line + block.offset);
  } catch (e) {
    if (e instanceof YamlError) throw bad(shown, e.message);
    throw e;
  }
  const list = (parsed as { configs?: Yaml } | null)?.configs;
  if (list === null || list === undefined) return undefined;
  if (!Array.isArray(list)) throw bad(shown, "`configs` is not a list");
  const out: CardConfig[] = [];
  for (const [i, c] of list.entries()) {
    if (c === null || typeof c !== "object" || Array.isArray(c)) throw bad(shown, `configs[${i}] is not a mapping`);
    const name = c["config_name"] ?? "default";
    if (typeof name !== "string" || name === "") throw bad(shown, `configs[${i}].config_name is not a name`);
    if (out.some((o) => o.name === name)) throw bad(shown, `configuration ${name} is declared twice`);
    const dataDir = c["data_dir"];
    if (dataDir !== undefined && dataDir !== null && typeof dataDir !== "string") throw bad(shown, `configs[${i}].data_dir is not a path`);
    const files = c["data_files"];
    out.push({
      name,
      isDefault: c["default"] === true,
      ...(typeof dataDir === "string" && dataDir.replace(/^\.?\/+|\/+$/g, "") !== "" ? { dataDir: dataDir.replace(/^\.?\/+|\/+$/g, "") } : {}),
      ...(files !== undefined && files !== null ? { dataFiles: splitPatterns(files, shown, `configs[${i}].data_files`) } : {}),
    });
  }
  return out;
}

const bad = (shown: string, problem: string) =>
  new UserError(`${shown}: cannot read the \`configs\` section of the dataset card's YAML header: ${problem}`, "name the data files yourself with `files = [...]`");

/** The `configs:` key and the lines that belong to it (indented, or sequence items at column 0). */
function configsBlock(yaml: string): { text: string; offset: number } | undefined {
  const lines = yaml.split(/\r?\n/);
  const start = lines.findIndex((l) => /^configs\s*:/.test(l));
  if (start < 0) return undefined;
  let end = start + 1;
  while (end < lines.length && (/^(\s|-(\s|$)|#)/.test(lines[end]!) || lines[end]!.trim() === "")) end++;
  return { text: lines.slice(start, end).join("\n"), offset: start };
}

/** `data_files` in its accepted shapes: a string, a list of strings (both: train), a list of {split, path}, or a mapping split -> path(s). */
function splitPatterns(v: Yaml, shown: string, where: string): Map<string, string[]> {
  const paths = (p: Yaml, at: string): string[] => {
    const list = Array.isArray(p) ? p : [p];
    if (list.length === 0 || list.some((x) => typeof x !== "string" || x === "")) throw bad(shown, `${at} must be a path or a list of paths`);
    return list as string[];
  };
  const out = new Map<string, string[]>();
  const add = (split: string, ps: string[], at: string) => {
    if (out.has(split)) throw bad(shown, `${at}: split ${split} is given twice`);
    out.set(split, ps);
  };
  if (typeof v === "string") add("train", [v], where);
  else if (Array.isArray(v) && v.every((x) => typeof x === "string")) add("train", paths(v, where), where);
  else if (Array.isArray(v)) {
    v.forEach((e, j) => {
      if (e === null || typeof e !== "object" || Array.isArray(e) || typeof e["split"] !== "string" || e["path"] === undefined)
        throw bad(shown, `${where}[${j}] must be a mapping with \`split\` and \`path\``);
      add(e["split"], paths(e["path"], `${where}[${j}].path`), `${where}[${j}]`);
    });
  } else if (v !== null && typeof v === "object") for (const [split, p] of Object.entries(v)) add(split, paths(p, `${where}.${split}`), where);
  else throw bad(shown, `${where} must be a path, a list of paths or a list of {split, path}`);
  return out;
}

/**
 * The configuration a stage reads: the one named, else the card's default (`default: true`, else the one called
 * `default`, else the only one). Undefined name and no default: an error listing the choices.
 */
export function pickConfig(configs: readonly CardConfig[], name: string | undefined, label: string): CardConfig {
  const names = configs.map((c) => c.name);
  if (name !== undefined) {
    const c = configs.find((x) => x.name === name);
    if (!c) {
      const near = didYouMean(name, names);
      throw new UserError(
        `${label}: no configuration \`${name}\`; the dataset card declares ${names.map((n) => `\`${n}\``).join(", ")}`,
        near ? `did you mean \`${near}\`?` : "set `config` to one of those",
      );
    }
    return c;
  }
  const c = configs.find((x) => x.isDefault) ?? configs.find((x) => x.name === "default") ?? (configs.length === 1 ? configs[0] : undefined);
  if (!c) throw new UserError(`${label}: the dataset has several configurations and none is the default: ${names.map((n) => `\`${n}\``).join(", ")}`, "set `config` to the one to read");
  return c;
}
