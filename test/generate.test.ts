import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { itpAsync, stackTrace, tempTree } from "./support/cli.js";
import { fault, faultRate, startOpenAIServer, type OpenAIServer, type ServerRequest } from "./support/openai-server.js";

// Generation through the CLI against a real OpenAI-compatible server on loopback: the request cache, faults,
// credentials. Answers are a function of the request's content (and seed), as a deterministic model's would be.

const hash = (s: string) => createHash("sha256").update(s).digest("hex");

/** A list of four ideas for "List ..." prompts, an answer for anything else; both depend only on the request. */
function answer(req: ServerRequest): string {
  const seed = String(req.body["seed"] ?? "");
  if (req.content.startsWith("List")) {
    const h = hash(req.content + seed);
    return `Here are some ideas:\n${[0, 1, 2, 3].map((i) => `${i + 1}. Idea ${h.slice(i * 8, i * 8 + 8)}`).join("\n")}`;
  }
  return `Answer to: ${req.content}`;
}

const KEY = "sk-test-abcdef0123456789";

const recipe = (extra = "") => `model teacher = openai_compatible() {
  model = "test-model"
  base_url = env("ITP_TEST_BASE_URL")
  api_key = secret("ITP_TEST_KEY")
  seed = 1
  concurrency = 8
  timeout = 2s
  retry = backoff(max_retries: 12, initial: 1ms, max: 20ms)
}

dataset questions = jsonl("questions.jsonl")

dataset ideas = generate(model: teacher) {
  prompt = "List four ideas."
  parser = "numbered_list"
  output_field = "idea"
  target = 25
}

dataset answered = distill(questions, model: teacher)
${extra}`;

const questions = Array.from({ length: 40 }, (_, i) => JSON.stringify({ instruction: `Question ${i}?`, input: i % 4 === 0 ? `context ${i}` : "", output: "" })).join("\n") + "\n";

let server: OpenAIServer;
let dir: string;
const env = () => ({ ITP_TEST_BASE_URL: server.url, ITP_TEST_KEY: KEY });

beforeAll(async () => {
  server = await startOpenAIServer({ answer, apiKey: KEY });
  dir = tempTree({ "r.itp": recipe(), "questions.jsonl": questions });
});
afterAll(() => server.close());

async function showJson(store: string, stage: string) {
  const r = await itpAsync(["show", "r.itp", stage, "--store", store, "--json", "--records", "1000"], { cwd: dir, env: env() });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { records: number; counts: Record<string, number>; sample: Record<string, unknown>[]; digest: string };
}

describe("generate and distill against an OpenAI-compatible server", () => {
  it("generates the target count; a rerun sends zero requests and gives the same bytes", async () => {
    const store = join(dir, "s1");
    server.reset();
    const r = await itpAsync(["run", "r.itp", "--store", store], { cwd: dir, env: env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(KEY);
    // 25 ideas at 4 per answer: 7 answers used (the last one in part); a few more may have been in flight.
    const ideas = await showJson(store, "ideas");
    expect(ideas.records).toBe(25);
    expect(ideas.sample[0]).toEqual({ idea: expect.stringMatching(/^Idea [0-9a-f]{8}$/) });
    expect(new Set(ideas.sample.map((x) => x["idea"])).size).toBe(25);
    expect(ideas.counts["requests: sent"]).toBe(7);
    const answered = await showJson(store, "answered");
    expect(answered.records).toBe(40);
    expect(answered.sample[0]).toEqual({ instruction: "Question 0?", input: "context 0", output: "Answer to: Question 0?\n\ncontext 0" });
    expect(answered.sample[1]!["output"]).toBe("Answer to: Question 1?");
    expect(answered.counts["requests: sent"]).toBe(40);
    expect(answered.counts["tokens: completion"]).toBeGreaterThan(0);
    const received = server.stats.received;
    expect(received).toBeGreaterThanOrEqual(47);

    // Forced reruns of both stages: every answer comes from the request cache.
    const again = await itpAsync(["run", "r.itp", "--store", store, "--force", "ideas", "--force", "answered"], { cwd: dir, env: env() });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(server.stats.received).toBe(received);
    const ideas2 = await showJson(store, "ideas");
    expect(ideas2.digest).toBe(ideas.digest);
    expect(ideas2.counts["requests: cached"]).toBe(7);
    expect(ideas2.counts["requests: sent"]).toBeUndefined();
    expect((await showJson(store, "answered")).digest).toBe(answered.digest);
  });

  it("with 20% of answers faulty, completes with the exact counts and reports retries by cause", async () => {
    const store = join(dir, "s-faults");
    server.reset();
    server.setFaults(faultRate(0.2, [fault.tooMany("0"), fault.status(500), fault.status(503), fault.drop, fault.malformed, fault.truncated, fault.hang], 7));
    try {
      const r = await itpAsync(["run", "r.itp", "--store", store], { cwd: dir, env: env() });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const ideas = await showJson(store, "ideas");
      const answered = await showJson(store, "answered");
      expect(ideas.records).toBe(25);
      expect(answered.records).toBe(40);
      const retries = Object.entries({ ...answered.counts }).filter(([k]) => k.startsWith("retries: "));
      const total = retries.reduce((a, [, n]) => a + n, 0) + Object.entries(ideas.counts).filter(([k]) => k.startsWith("retries: ")).reduce((a, [, n]) => a + n, 0);
      expect(total).toBeGreaterThan(0);
      for (const [k] of retries) expect(["retries: 429", "retries: 5xx", "retries: connection", "retries: malformed", "retries: timeout"]).toContain(k);
      // The same data as without faults.
      expect(answered.digest).toBe((await showJson(join(dir, "s1"), "answered")).digest);
      expect(ideas.digest).toBe((await showJson(join(dir, "s1"), "ideas")).digest);
    } finally {
      server.setFaults(undefined);
    }
  });

  it("a 401 stops the stage at once with the endpoint named and the key never printed", async () => {
    const store = join(dir, "s-401");
    server.reset();
    const r = await itpAsync(["run", "r.itp", "--store", store, "--only", "answered"], { cwd: dir, env: { ...env(), ITP_TEST_KEY: "sk-wrong-key-999999" } });
    expect(r.code).toBe(1);
    const out = r.stdout + r.stderr;
    expect(out).toContain(`${server.url}/chat/completions: 401`);
    expect(out).not.toContain("sk-wrong-key-999999");
    expect(out).not.toMatch(stackTrace);
    // Stopped at once: no retries of a 401 (the requests in flight when it came are all there is).
    expect(server.stats.received).toBeLessThanOrEqual(16);
  });

  it("an answer the parser cannot read is dropped and listed, not fatal", async () => {
    const d = tempTree({
      "r.itp": recipe(`
dataset lists = generate(questions, model: teacher) {
  prompt = "{instruction}"
  parser = "numbered_list"
}
`),
      "questions.jsonl": questions,
    });
    const store = join(d, "s");
    const r = await itpAsync(["run", "r.itp", "--store", store, "--only", "lists"], { cwd: d, env: env() });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const shown = await itpAsync(["show", "r.itp", "lists", "--dropped", "--records", "1", "--store", store], { cwd: d, env: env() });
    expect(shown.stdout).toContain("lists: 40 dropped (unparsable answer: no list items in the answer 40)");
    expect(shown.stdout).toContain(`[unparsable answer: no list items in the answer, record 1, sample 1] {"instruction":"Question 0?"`);
    writeFileSync(join(d, "unused"), readFileSync(join(d, "r.itp")));
  });
});
