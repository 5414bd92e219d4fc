import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { itp, repoRoot, tempTree } from "./support/cli.js";

/** Two versions of the Tulu 2 recipe: ShareGPT goes from all 114,046 chats to 100,000, and a stage is added. */
const v1 = readFileSync(join(repoRoot, "pipelines/tulu2.itp"), "utf8");
const v2 = v1
  .replace("mix tulu2_data = tulu2_mixture()\n", "mix tulu2_data = tulu2_mixture() {\n  mixture.sharegpt = take(100_000)\n}\n")
  .concat("\n/// A small sample to eyeball.\ndataset tulu2_preview = take(tulu2_data, n: 1_000)\n");

describe("itp diff on two versions of the Tulu 2 recipe", () => {
  const dir = tempTree({ "tulu2_v1.itp": v1, "tulu2_v2.itp": v2 });

  it("reports exactly the changed count, the added stage and the stages they invalidate (text)", () => {
    expect(v2).not.toBe(v1);
    const r = itp(["diff", "tulu2_v1.itp", "tulu2_v2.itp"], { cwd: dir });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        "itp diff tulu2_v1.itp -> tulu2_v2.itp",
        "+ tulu2_preview (take): Dataset<Chat>",
        "~ tulu2_data.mixture (mix)",
        "    component sharegpt: all -> take(n: 100000)",
        "invalidated downstream: tulu2_data, tulu2_data_json, tulu2_7b, tulu2_scores",
        "",
      ].join("\n"),
    );
  });

  it("and the same in --json", () => {
    const r = itp(["diff", "tulu2_v1.itp", "tulu2_v2.itp", "--json"], { cwd: dir });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      added: [{ id: "tulu2_preview", kind: "take", type: "Dataset<Chat>" }],
      removed: [],
      changed: [
        {
          id: "tulu2_data.mixture",
          kind: "mix",
          params: [],
          components: [{ component: "sharegpt", old: { fn: "all" }, new: { fn: "take", n: 100000 } }],
          inputs: [],
        },
      ],
      recipeParams: [],
      invalidated: ["tulu2_data", "tulu2_data_json", "tulu2_7b", "tulu2_scores"],
      // The effects did not change: no host, path outside the folder, variable or secret was added or removed.
      effects: {
        hosts: { added: [], removed: [] },
        writes_outside: { added: [], removed: [] },
        reads_outside: { added: [], removed: [] },
        env: { added: [], removed: [] },
        secrets: { added: [], removed: [] },
        commands: { added: [], removed: [] },
        gpus: null,
      },
      // Only std imports: no package or repository version to compare.
      imports: [],
    });
  });

  it("a version against itself has no semantic changes, even reformatted", () => {
    const messy = tempTree({ "a.itp": v1, "b.itp": v1.replace(/\n\n/g, "\n\n\n").replace(/ = /g, "   =   ") });
    const r = itp(["diff", "a.itp", "b.itp"], { cwd: messy });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("itp diff a.itp -> b.itp\nno semantic changes\n");
  });

  it("a broken new version is an error naming the version and the place", () => {
    const d = tempTree({ "a.itp": v1, "b.itp": v1.replace("tulu2_mixture()", "tulu2_mixtur()") });
    const r = itp(["diff", "a.itp", "b.itp"], { cwd: d });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("b.itp:");
    expect(r.stderr).toContain("(new version) unknown stage kind or recipe `tulu2_mixtur`");
  });
});
