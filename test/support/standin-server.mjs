#!/usr/bin/env node
// A stand-in for a model server (vLLM's OpenAI-compatible API), for the tests of the `serve` stage: started by the
// stage's command line, it answers GET /v1/models, POST /v1/completions (generation: "echo: <prompt>"; with
// `echo: true`, the prompt's word tokens with log-probabilities from a fixed table and their text offsets) and POST
// /v1/chat/completions ("echo: <last message>").
//
//   node standin-server.mjs --port N [--name NAME] [--pid-file F] [--starts F] [--never-ready] [--delay MS]
//
// --pid-file: its pid is written there; --starts: a line is appended at each start; --never-ready: /v1/models
// answers 503 forever; --delay: each completion waits that long.
import { appendFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const port = Number(opt("--port"));
const name = opt("--name") ?? "model";
const neverReady = args.includes("--never-ready");
const delay = Number(opt("--delay") ?? 0);
if (opt("--pid-file")) writeFileSync(opt("--pid-file"), String(process.pid));
if (opt("--starts")) appendFileSync(opt("--starts"), `${process.pid}\n`);
console.log(`stand-in: loading ${name}${neverReady ? " (it never becomes ready)" : ""}`);

/** log P(word) from a fixed table: a hash of the word, in (-4, 0]. */
function logprobOf(token) {
  let h = 2166136261;
  for (let i = 0; i < token.length; i++) h = Math.imul(h ^ token.charCodeAt(i), 16777619);
  return -((h >>> 0) % 1000) / 250;
}

const server = createServer((req, res) => {
  const send = (status, body) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
  if (req.method === "GET" && req.url === "/v1/models") {
    if (neverReady) return send(503, { error: { message: "loading" } });
    return send(200, { object: "list", data: [{ id: name, object: "model" }] });
  }
  let data = "";
  req.on("data", (c) => (data += c));
  req.on("end", () => {
    const body = JSON.parse(data || "{}");
    if (body.model !== name) return send(404, { error: { message: `The model \`${body.model}\` does not exist.` } });
    setTimeout(() => {
      if (req.url === "/v1/chat/completions") {
        const text = `echo: ${body.messages.at(-1).content}`;
        return send(200, { choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 2 } });
      }
      if (req.url !== "/v1/completions") return send(404, { error: { message: `no route ${req.url}` } });
      if (body.echo) {
        const tokens = body.prompt.match(/\s*\S+/g) ?? [];
        let offset = 0;
        const text_offset = tokens.map((t) => ((offset += t.length), offset - t.length));
        const token_logprobs = tokens.map((t, k) => (k === 0 ? null : logprobOf(t)));
        const top_logprobs = tokens.map((t, k) => (k === 0 ? null : { [t]: logprobOf(t) }));
        return send(200, { choices: [{ index: 0, text: body.prompt, finish_reason: "length", logprobs: { tokens, token_logprobs, top_logprobs, text_offset } }], usage: { prompt_tokens: tokens.length, completion_tokens: 0 } });
      }
      let text = `echo: ${body.prompt}`;
      for (const s of body.stop ?? []) if (text.includes(s)) text = text.slice(0, text.indexOf(s));
      send(200, { choices: [{ index: 0, text, finish_reason: "stop" }], usage: { prompt_tokens: 1, completion_tokens: 2 } });
    }, delay);
  });
});
server.listen(port, "127.0.0.1", () => console.log(`stand-in: listening on ${server.address().port}`));
process.on("SIGTERM", () => {
  console.log("stand-in: stopping");
  process.exit(0);
});
