import { parse, YAMLParseError } from "yaml";
import { didYouMean } from "../diagnostics/suggest.js";
import { UserError } from "../core/errors.js";

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
 * The header is read whole, as `datasets` reads it (anchors and aliases included); only `configs` is used.
 * Plain scalars other than true/false/null stay strings, so a configuration called `2024` or a path `1.0` keeps
 * its spelling.
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
  let parsed: Yaml;
  try {
    // As PyYAML, which `datasets` uses: a repeated key is not an error (the last one counts).
    parsed = parse(fm.yaml, { customTags: (tags) => tags.filter((t) => !/(^|:)(int|float)/.test(typeof t === "string" ? t : t.tag)), uniqueKeys: false, logLevel: "error" }) as Yaml;
  } catch (e) {
    if (!(e instanceof YAMLParseError)) throw e;
    const at = e.linePos ? `line ${fm.line + e.linePos[0].line - 1}: ` : "";
    throw bad(shown, at + e.message.replace(/ at line \d+, column \d+:[\s\S]*$/, ""));
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

/** A parsed YAML value (numbers stay strings: see {@link cardConfigs}). */
type Yaml = string | boolean | null | Yaml[] | { [k: string]: Yaml };

/**
 * The YAML header of a Markdown file (between a first line `---` and the next `---`), or undefined; `line` is the
 * file line of its first YAML line.
 */
export function frontMatter(markdown: string): { yaml: string; line: number } | undefined {
  const m = /^\uFEFF?---[ \t]*\r?\n([\s\S]*?)\r?\n(---|\.\.\.)[ \t]*(\r?\n|$)/.exec(markdown);
  if (m) return { yaml: m[1]!, line: 2 };
  return /^\uFEFF?---[ \t]*\r?\n(---|\.\.\.)[ \t]*(\r?\n|$)/.test(markdown) ? { yaml: "", line: 2 } : undefined;
}

const bad = (shown: string, problem: string) =>
  new UserError(`${shown}: cannot read the dataset card's YAML header: ${problem}`, "name the data files yourself with `files = [...]`");

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
