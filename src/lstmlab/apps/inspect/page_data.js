// lstmlab inspect, the data: decodes what encoding.py embedded (see its docstring for the layout).
// Runs first; page_search.js and page.js share its scope (page.html wraps the three in one function).
const META = JSON.parse(document.getElementById("meta").textContent);
const T = META.T, TP = META.Tp, LAYERS = META.layers;
const TEXT = META.tokens.join("");
const offsets = new Int32Array(T + 1);  // UTF-16 offset of each token in TEXT, for the regex matches
for (let t = 0; t < T; t++) offsets[t + 1] = offsets[t] + META.tokens[t].length;
// Several texts (a classifier's examples) each start from a zero state: text[t] is the text step t is in.
const STARTS = META.starts || [0], textOf = new Int32Array(T);
for (let k = 1; k < STARTS.length; k++) textOf.fill(k, STARTS[k]);
const TOKEN = META.token_kind || "character";  // what one cell holds: a character or a word

// -- decoding ------------------------------------------------------------------------------------
function bytes(b64) {
  const bin = atob(b64), n = bin.length, out = new Uint8Array(n);
  for (let k = 0; k < n; k++) out[k] = bin.charCodeAt(k);
  return out;
}
const blobText = {};
function blob(id) {
  if (!(id in blobText)) blobText[id] = document.getElementById(id).textContent;
  return blobText[id];
}
// value = lo + code * step, for one unit of one stored quantity
function scale(layer, q, unit) {
  const r = LAYERS[layer].ranges[q];
  const lo = Array.isArray(r.lo) ? r.lo[unit] : r.lo, hi = Array.isArray(r.hi) ? r.hi[unit] : r.hi;
  return [lo, (hi > lo ? hi - lo : 1) / r.levels];
}
// One unit's row: T/3*4 base64 characters from its own offset (rows are whole base64 quanta).
const rowCache = new Map();
function unitCodes(layer, q, unit) {
  const key = layer + "/" + q + "/" + unit;
  let c = rowCache.get(key);
  if (!c) {
    const n = TP / 3 * 4;
    c = bytes(blob("q-" + layer + "-" + q).substr(unit * n, n));
    if (rowCache.size > 4000) rowCache.clear();
    rowCache.set(key, c);
  }
  return c;
}
// Dequantized values (T,) of one unit; tanh(c) is computed from c.
function unitValues(layer, q, unit) {
  const src = q === "tc" ? "c" : q;
  const codes = unitCodes(layer, src, unit), [lo, step] = scale(layer, src, unit);
  const v = new Float64Array(T);
  for (let t = 0; t < T; t++) v[t] = lo + codes[t] * step;
  if (q === "tc") for (let t = 0; t < T; t++) v[t] = Math.tanh(v[t]);
  return v;
}
const layerCache = new Map();
function layerCodes(layer, q) {  // (H, TP) codes of a whole layer, for the searches
  const key = layer + "/" + q;
  if (!layerCache.has(key)) layerCache.set(key, bytes(blob("q-" + layer + "-" + q)));
  return layerCache.get(key);
}
let classP = null;
function classProbs() {  // (T, C) uint16 probabilities of a classifier, after each step
  if (!META.classes) return null;
  if (!classP) { const b = bytes(blob("p-classes")); classP = new Uint16Array(b.buffer, 0, b.length >> 1); }
  return classP;
}
let preds = null;
function predictions() {
  if (!META.predictions) return null;
  if (!preds) {
    const u16 = (id) => { const b = bytes(blob(id)); return new Uint16Array(b.buffer, 0, b.length >> 1); };
    preds = { ids: u16("p-ids"), probs: u16("p-probs"), s: u16("p-surprisal") };
  }
  return preds;
}

