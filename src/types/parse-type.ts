import { builtinRecordTypes, scalarTypes } from "./builtins.js";
import { dataset, list, MODEL, REPORT, TEMPLATE, type Ty } from "./types.js";

/**
 * Parse a type written in a stage signature (`Dataset<T>`, `Dataset<Chat | Instruction>`, `list<string>`).
 * Single capital letters are type variables. Throws on a malformed signature: that is a bug in the registry,
 * caught by its tests, never a user error.
 */
export function parseType(src: string, records: ReadonlyMap<string, Ty> = builtinRecordTypes): Ty {
  const toks = src.match(/[A-Za-z_][A-Za-z0-9_]*|[<>|,]/g) ?? [];
  let i = 0;
  const union = (): Ty => {
    const opts = [one()];
    while (toks[i] === "|") {
      i++;
      opts.push(one());
    }
    return opts.length === 1 ? opts[0]! : { k: "union", options: opts };
  };
  const one = (): Ty => {
    const name = toks[i++];
    if (!name) throw new Error(`bad type ${src}`);
    let arg: Ty | undefined;
    if (toks[i] === "<") {
      i++;
      arg = union();
      if (toks[i++] !== ">") throw new Error(`bad type ${src}`);
    }
    if (name === "Dataset") return dataset(arg ?? { k: "var", name: "T" });
    if (name === "list") return list(arg ?? { k: "scalar", name: "any" });
    if (name === "Model") return MODEL;
    if (name === "Report") return REPORT;
    if (name === "Template") return TEMPLATE;
    if (/^[A-Z]$/.test(name)) return { k: "var", name };
    const t = scalarTypes.get(name) ?? records.get(name);
    if (!t) throw new Error(`unknown type ${name} in ${src}`);
    return t;
  };
  const t = union();
  if (i !== toks.length) throw new Error(`bad type ${src}`);
  return t;
}
