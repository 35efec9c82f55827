// Runs an ONNX file written by `fbnet export` in onnxruntime (npm's
// onnxruntime-node) and compares it with fbnet's own outputs, or times it.
//
//   NODE_PATH=$(bash scripts/install_ort.sh) node scripts/onnx_run.js MODEL.onnx
//       [--compare DIR]... [--tol T] [--threads N] [--bench BATCH --steps S --warmup W]
//
// --compare DIR: DIR is what `fbnet infer` wrote (index.json, input file, raw
// outputs); the model runs on the same input and every fbnet output is
// compared: det.cls/box/ctr [N,K,P] with the model's per-level maps
// det.*.s<stride> laid end to end. Prints one line per output,
//   compare DIR OUTPUT max_abs_diff=X max_abs=Y rel=Z
// and fails (exit 1) when rel = X / max(Y, 1e-3) exceeds --tol (default 1e-4).
// --bench BATCH: times session.run on random input of that batch size; prints
// a JSON line {"runtime": "onnxruntime", "sec_per_step", ...}.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = { model: null, compare: [], tol: 1e-4, threads: 1, bench: 0, steps: 10, warmup: 3 };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === '--compare') a.compare.push(v), i++;
    else if (k === '--tol') a.tol = Number(v), i++;
    else if (k === '--threads') a.threads = Number(v), i++;
    else if (k === '--bench') a.bench = Number(v), i++;
    else if (k === '--steps') a.steps = Number(v), i++;
    else if (k === '--warmup') a.warmup = Number(v), i++;
    else if (k.startsWith('--')) throw new Error(`unknown option ${k}`);
    else a.model = k;
  }
  if (!a.model) throw new Error('usage: onnx_run.js MODEL.onnx [--compare DIR]... [--bench BATCH]');
  return a;
}

function readF32(file) {
  const b = fs.readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
}

// fbnet's [N,C,P] from the per-level [N,C,H,W] maps named prefix.s<stride>
function joinLevels(res, prefix, det, n, c) {
  const P = det.sizes.reduce((s, hw) => s + hw[0] * hw[1], 0);
  const out = new Float32Array(n * c * P);
  det.strides.forEach((stride, l) => {
    const t = res[`${prefix}.s${stride}`];
    if (!t) throw new Error(`the model has no output ${prefix}.s${stride}`);
    const hw = det.sizes[l][0] * det.sizes[l][1];
    for (let i = 0; i < n * c; i++)
      for (let j = 0; j < hw; j++) out[i * P + det.offsets[l] + j] = t.data[i * hw + j];
  });
  return out;
}

async function compareDir(session, dir, tol) {
  const idx = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const x = new ort.Tensor('float32', readF32(idx.input.file), idx.input.shape);
  const res = await session.run({ input: x });
  let ok = true;
  for (const o of idx.outputs) {
    const want = readF32(path.join(dir, o.file));
    const got = o.name.startsWith('det.') ? joinLevels(res, o.name, idx.det, o.shape[0], o.shape[1])
      : res[o.name] && res[o.name].data;
    if (!got) throw new Error(`the model has no output ${o.name}`);
    if (got.length !== want.length) throw new Error(`${o.name}: ${got.length} values, fbnet wrote ${want.length}`);
    let diff = 0, mag = 0;
    for (let i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs(got[i] - want[i]));
      mag = Math.max(mag, Math.abs(want[i]));
    }
    const rel = diff / Math.max(mag, 1e-3);
    console.log(`compare ${dir} ${o.name} max_abs_diff=${diff.toExponential(3)} max_abs=${mag.toPrecision(4)} rel=${rel.toExponential(3)}`);
    if (!(rel <= tol)) ok = false;
  }
  return ok;
}

async function bench(session, a) {
  const shape = a.inputShape;
  const n = a.bench * shape[1] * shape[2] * shape[3];
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.5;
  const x = new ort.Tensor('float32', data, [a.bench, shape[1], shape[2], shape[3]]);
  for (let i = 0; i < a.warmup; i++) await session.run({ input: x });
  const t = [];
  for (let i = 0; i < a.steps; i++) {
    const t0 = process.hrtime.bigint();
    await session.run({ input: x });
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  t.sort((p, q) => p - q);
  console.log(JSON.stringify({ runtime: 'onnxruntime', version: require('onnxruntime-node/package.json').version,
    model: a.model, batch: a.bench, threads: a.threads, steps: a.steps,
    sec_per_step: t[Math.floor(t.length / 2)], min_sec: t[0] }));
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const session = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: a.threads, interOpNumThreads: 1, executionProviders: ['cpu'] });
  let ok = true;
  for (const d of a.compare) ok = (await compareDir(session, d, a.tol)) && ok;
  if (a.bench > 0) {
    const shape = process.env.ONNX_INPUT_SHAPE ? JSON.parse(process.env.ONNX_INPUT_SHAPE) : null;
    if (!shape) throw new Error('--bench needs ONNX_INPUT_SHAPE=[1,C,S,S] in the environment');
    a.inputShape = shape;
    await bench(session, a);
  }
  process.exit(ok ? 0 : 1);
}
main().catch((e) => { console.error(`onnx_run: error: ${e.message}`); process.exit(2); });
