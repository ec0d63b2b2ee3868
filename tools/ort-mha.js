#!/usr/bin/env node
// ONNX Runtime's dense attention (the com.microsoft MultiHeadAttention contrib op, which
// runs MLAS's flash attention on CPU) timed on the shapes of etk's attention benchmarks,
// one intra-op thread, so scripts/bench-peers can print it beside etk.
//   node tools/ort-mha.js [--heads 12] [--dim 64] [--seqs 128,512,1024,2048] [--min-time 0.3]
// Prints one line per shape: `heads:H/seq:S/dim:D <GFLOP/s> <ms per run>`, FLOPs counted
// as 4 * H * S^2 * D (the two products), as etk's benchmarks count them.
// The one-node model is written here as protobuf bytes (onnx.proto field numbers), so the
// tool needs nothing but onnxruntime-node ($ETK_CACHE/npm, installed by scripts/bench-peers).
'use strict';
const path = require('path');
const os = require('os');

const cache = process.env.ETK_CACHE || path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'etk');
const ort = require(path.join(cache, 'npm', 'node_modules', 'onnxruntime-node'));

// --- minimal protobuf writer: varints, length-delimited fields -------------------------
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const key = (field, wire) => varint((field << 3) | wire);
const int = (field, n) => [...key(field, 0), ...varint(n)];
const bytes = (field, b) => [...key(field, 2), ...varint(b.length), ...b];
const str = (field, s) => bytes(field, [...Buffer.from(s, 'utf8')]);
const msg = (field, parts) => bytes(field, parts.flat());

// ValueInfoProto for a float tensor of the given shape.
function floatTensor(field, name, dims) {
  const shape = dims.map((d) => msg(1, [int(1, d)]));  // TensorShapeProto.dim { dim_value }
  const tensorType = msg(1, [int(1, 1), msg(2, shape)]);  // TypeProto.tensor_type { elem_type FLOAT, shape }
  return msg(field, [str(1, name), msg(2, [tensorType])]);
}

function mhaModel(heads, seq, dim) {
  const hidden = heads * dim;
  const node = msg(1, [str(1, 'q'), str(1, 'k'), str(1, 'v'), str(2, 'o'), str(3, 'mha'),
    str(4, 'MultiHeadAttention'), str(7, 'com.microsoft'),
    msg(5, [str(1, 'num_heads'), int(3, heads), int(20, 2)])]);  // AttributeProto INT
  const graph = msg(7, [node, str(2, 'mha'),
    floatTensor(11, 'q', [1, seq, hidden]), floatTensor(11, 'k', [1, seq, hidden]),
    floatTensor(11, 'v', [1, seq, hidden]), floatTensor(12, 'o', [1, seq, hidden])]);
  return Uint8Array.from([...int(1, 8), ...str(2, 'etk'), ...graph,
    ...msg(8, [str(1, ''), int(2, 17)]), ...msg(8, [str(1, 'com.microsoft'), int(2, 1)])]);
}

function options() {
  const a = { heads: 12, dim: 64, seqs: '128,512,1024,2048', 'min-time': 0.3 };
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  return { heads: +a.heads, dim: +a.dim, seqs: String(a.seqs).split(',').map(Number), minTime: +a['min-time'] };
}

async function main() {
  const o = options();
  for (const seq of o.seqs) {
    const s = await ort.InferenceSession.create(mhaModel(o.heads, seq, o.dim), {
      intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
    });
    const n = o.heads * seq * o.dim;
    const feed = {};
    for (const name of ['q', 'k', 'v']) {
      const data = new Float32Array(n);
      for (let i = 0; i < n; ++i) data[i] = Math.sin(i * 0.37 + name.charCodeAt(0));
      feed[name] = new ort.Tensor('float32', data, [1, seq, o.heads * o.dim]);
    }
    for (let w = 0; w < 2; ++w) await s.run(feed);
    let runs = 0;
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    do { await s.run(feed); ++runs; } while (Number(process.hrtime.bigint() - t0) / 1e9 < o.minTime);
    const cpu = process.cpuUsage(cpu0);
    const secPerRun = (cpu.user + cpu.system) / 1e6 / runs;  // CPU time, as the C++ side reports
    const flops = 4 * o.heads * seq * seq * o.dim;
    console.log(`heads:${o.heads}/seq:${seq}/dim:${o.dim} ${(flops / secPerRun / 1e9).toFixed(1)} ${(secPerRun * 1e3).toFixed(3)}`);
  }
}
main().catch((e) => { console.error(`ort-mha: ${e.message}`); process.exit(1); });
