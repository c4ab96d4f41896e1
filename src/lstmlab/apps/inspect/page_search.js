// lstmlab inspect, the searches: the JavaScript twins of search.py, on the decoded codes.
// Runs after page_data.js, in the same scope.

// -- top contexts (search.py: top_contexts) ------------------------------------------------------
function pick(order, k, spacing) {
  const chosen = [];
  for (const t of order) {
    if (chosen.every((c) => Math.abs(t - c) >= spacing)) { chosen.push(t); if (chosen.length === k) break; }
  }
  return chosen;
}
// Steps by value, highest (lowest) first and earlier steps first among equals. The values are increasing
// functions of the 8-bit codes (tanh(c) too), so a counting sort of the codes orders them in O(T).
function topContexts(codes, k, spacing) {
  const count = new Int32Array(257);
  for (let t = 0; t < T; t++) count[codes[t] + 1]++;
  for (let c = 0; c < 256; c++) count[c + 1] += count[c];  // count[c]: first slot of code c
  const asc = new Int32Array(T);
  for (let t = 0; t < T; t++) asc[count[codes[t]]++] = t;  // by code, then by step
  const high = [], low = [];
  for (let end = T; end > 0;) {  // codes from the highest down, steps ascending within a code
    let start = end - 1;
    while (start > 0 && codes[asc[start - 1]] === codes[asc[end - 1]]) start--;
    for (let j = start; j < end; j++) high.push(asc[j]);
    if (high.length > 2 * k * spacing + k) break;  // enough candidates for k picks `spacing` apart
    end = start;
  }
  for (let j = 0; j < T && j <= 2 * k * spacing + k; j++) low.push(asc[j]);
  return [pick(high, k, spacing), pick(low, k, spacing)];
}
// -- pattern search (search.py: pattern_signal, correlations, rank_units) ------------------------
function tokenOf(offset) {  // the token holding UTF-16 offset `offset`
  let lo = 0, hi = T - 1;
  while (lo < hi) { const m = (lo + hi + 1) >> 1; if (offsets[m] <= offset) lo = m; else hi = m - 1; }
  return lo;
}
function signal(pattern, mode) {
  const s = new Float64Array(T);
  if (mode === "line-position") {
    let pos = 0;
    for (let t = 0; t < T; t++) { s[t] = pos; pos = META.tokens[t].endsWith("\n") ? 0 : pos + 1; }
    return s;
  }
  const rx = new RegExp(pattern, "gd");  // d: the indices of the groups; with a group, its span is the signal
  let m;
  while ((m = rx.exec(TEXT)) !== null) {
    if (m[0].length === 0) rx.lastIndex++;
    const span = m.length > 1 ? m.indices[1] : m.indices[0];
    if (!span || span[1] === span[0]) continue;  // a group that did not take part, or an empty span
    const a = tokenOf(span[0]), b = tokenOf(span[1] - 1);
    for (let t = a; t <= b; t++) s[t] = 1;
  }
  return s;
}
// Pearson r of the signal with every unit; on the codes, an increasing affine map of the values.
function correlations(s, layer, q) {
  const H = LAYERS[layer].units, codes = layerCodes(layer, q), r = new Float64Array(H);
  let ms = 0;
  for (let t = 0; t < T; t++) ms += s[t];
  ms /= T;
  const sc = new Float64Array(T);
  let ss = 0;
  for (let t = 0; t < T; t++) { sc[t] = s[t] - ms; ss += sc[t] * sc[t]; }
  for (let u = 0; u < H; u++) {
    const base = u * TP;
    let mv = 0;
    for (let t = 0; t < T; t++) mv += codes[base + t];
    mv /= T;
    let num = 0, vv = 0;
    for (let t = 0; t < T; t++) { const d = codes[base + t] - mv; num += sc[t] * d; vv += d * d; }
    const den = Math.sqrt(ss * vv);
    r[u] = den > 0 ? num / den : 0;
  }
  return r;
}
function rank(scores, k, byAbs) {
  const idx = Array.from(scores, (_, u) => u);
  const key = (u) => (byAbs ? Math.abs(scores[u]) : scores[u]);
  idx.sort((a, b) => key(b) - key(a) || a - b);
  return idx.slice(0, k).map((u) => [u, scores[u]]);
}

// -- units most active here (search.py: most_active) -----------------------------------------------
// z (H,): how far each unit's mean over steps [start, end) lies above its mean over the text, in standard
// deviations; on the codes (an increasing affine map of the values) except tanh(c), which is not affine.
function activeScores(layer, q, start, end) {
  const H = LAYERS[layer].units, z = new Float64Array(H);
  for (let u = 0; u < H; u++) {
    const v = q === "tc" ? unitValues(layer, q, u) : null, codes = v ? null : layerCodes(layer, q);
    const at = v ? (t) => v[t] : (t) => codes[u * TP + t];
    let m = 0, m2 = 0, ms = 0;
    for (let t = 0; t < T; t++) { const x = at(t); m += x; m2 += x * x; }
    m /= T;
    const sd = Math.sqrt(Math.max(0, m2 / T - m * m));
    for (let t = start; t < end; t++) ms += at(t);
    ms /= end - start;
    z[u] = sd > 0 ? (ms - m) / sd : 0;
  }
  return z;
}
