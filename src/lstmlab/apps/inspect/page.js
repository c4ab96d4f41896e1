// lstmlab inspect: decodes the arrays embedded in this page and draws them. No network, no libraries.
// The layout of the data is described in lstmlab/apps/inspect/encoding.py; the searches mirror search.py.
"use strict";
(function () {
  const META = JSON.parse(document.getElementById("meta").textContent);
  const T = META.T, TP = META.Tp, LAYERS = META.layers;
  const QNAMES = { i: "input gate i", f: "forget gate f", g: "candidate g", c: "cell c", tc: "tanh(c)",
                   o: "output gate o", h: "hidden h" };
  const SHOWN = ["i", "f", "g", "c", "tc", "o", "h"];
  const state = { layer: 0, q: "c", units: LAYERS.map(() => 0), hover: -1, ranked: [], active: [] };
  const $ = (id) => document.getElementById(id);

  // -- decoding ------------------------------------------------------------------------------------
  function bytes(b64) {
    const bin = atob(b64), n = bin.length, out = new Uint8Array(n);
    for (let k = 0; k < n; k++) out[k] = bin.charCodeAt(k);
    return out;
  }
  const blobText = {};
  function blob(id) {
    if (!(id in blobText)) blobText[id] = $(id).textContent;
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
  let preds = null;
  function predictions() {
    if (!META.predictions) return null;
    if (!preds) {
      const u16 = (id) => { const b = bytes(blob(id)); return new Uint16Array(b.buffer, 0, b.length >> 1); };
      preds = { ids: u16("p-ids"), probs: u16("p-probs"), s: u16("p-surprisal") };
    }
    return preds;
  }

  // -- the text, one span per token ----------------------------------------------------------------
  const textEl = $("text");
  const spans = new Array(T);
  const offsets = new Int32Array(T + 1);  // UTF-16 offset of each token in the joined text
  // Whole lines are grouped in chunks with content-visibility: auto, so that the browser styles, lays out and
  // paints only the chunks on screen: recolouring 20,000 characters then costs the visible ones.
  (function buildText() {
    const frag = document.createDocumentFragment();
    let chunk = null, size = 0, lines = 1;
    const close = () => { if (chunk) { chunk.style.containIntrinsicSize = `auto ${Math.ceil(lines * 20.2)}px`; frag.appendChild(chunk); } };
    for (let t = 0; t < T; t++) {
      if (!chunk) { chunk = document.createElement("div"); chunk.className = "chunk"; size = 0; lines = 1; }
      const tok = META.tokens[t], s = document.createElement("span");
      s.k = t;
      if (tok === "\n") { s.textContent = "\u21b5\n"; s.className = "nl"; lines++; } else s.textContent = tok;
      spans[t] = s;
      chunk.appendChild(s);
      offsets[t + 1] = offsets[t] + tok.length;
      if (++size >= 3000 || (size >= 400 && tok === "\n")) { close(); chunk = null; }
    }
    close();
    textEl.appendChild(frag);
  })();
  const TEXT = META.tokens.join("");

  // -- colours: 256 steps of a sequential (gates in [0, 1]) or diverging (values in [-1, 1]) scale ----
  function palette(diverging) {
    const out = [];
    for (let k = 0; k < 256; k++) {
      const x = k / 255;
      if (!diverging) out.push(`rgba(33,102,172,${(0.85 * x).toFixed(3)})`);
      else {
        const d = 2 * x - 1, a = (0.85 * Math.abs(d)).toFixed(3);
        out.push(d >= 0 ? `rgba(214,47,39,${a})` : `rgba(33,102,172,${a})`);
      }
    }
    return out;
  }
  const SEQ = palette(false), DIV = palette(true);
  function colourIndex(q, v, maxAbs) {
    if (q === "i" || q === "f" || q === "o") return Math.round(v * 255);
    const x = q === "c" ? v / maxAbs : v;  // the cell: scaled by the unit's largest |c| on this text
    return Math.max(0, Math.min(255, Math.round((x + 1) * 127.5)));
  }
  function legend(q, maxAbs) {
    const seq = q === "i" || q === "f" || q === "o";
    const grad = seq ? `linear-gradient(90deg, ${SEQ[0]}, ${SEQ[255]})`
                     : `linear-gradient(90deg, ${DIV[0]}, ${DIV[128]}, ${DIV[255]})`;
    const lo = seq ? "0" : q === "c" ? (-maxAbs).toFixed(2) : "\u22121", hi = seq ? "1" : q === "c" ? maxAbs.toFixed(2) : "1";
    $("legend").innerHTML = `${lo}<span class="bar" style="background:${grad}"></span>${hi}`;
  }

  let current = null;  // values of the selected layer / quantity / unit
  function redraw() {
    const { layer, q } = state, unit = state.units[layer];
    const v = unitValues(layer, q, unit);
    let maxAbs = 1e-12;
    if (q === "c") for (let t = 0; t < T; t++) maxAbs = Math.max(maxAbs, Math.abs(v[t]));
    const pal = q === "i" || q === "f" || q === "o" ? SEQ : DIV;
    for (let t = 0; t < T; t++) spans[t].style.backgroundColor = pal[colourIndex(q, v[t], maxAbs)];
    current = v;
    legend(q, maxAbs);
    for (const el of document.querySelectorAll(".unit-name")) el.textContent = `${LAYERS[layer].name} unit ${unit} (${QNAMES[q]})`;
    $("unit").value = unit;
    $("layer").value = layer;
    $("quantity").value = q;
    contexts(v, unitCodes(layer, q === "tc" ? "c" : q, unit));
    markLists();
    markScatter();
    if (state.hover >= 0) showStep(state.hover);
  }

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
  function show(tok) { return tok === "\n" ? "\u21b5" : tok === "\t" ? "\u21e5" : tok; }
  function showOne(tok) { return (tok === " " ? "\u2423" : show(tok)).replace(/&/g, "&amp;").replace(/</g, "&lt;"); }
  function windowHtml(t) {
    const a = Math.max(0, t - 30), b = Math.min(T, t + 8);
    const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
    const part = (x, y) => esc(META.tokens.slice(x, y).map(show).join(""));
    return `${part(a, t)}<mark>${esc(show(META.tokens[t]))}</mark>${part(t + 1, b)}`;
  }
  function contexts(v, codes) {
    const [high, low] = topContexts(codes, 5, 20);
    for (const [id, list] of [["ctx-high", high], ["ctx-low", low]]) {
      const ol = $(id);
      ol.innerHTML = "";
      for (const t of list) {
        const li = document.createElement("li");
        li.innerHTML = `${windowHtml(t)} <small>${v[t].toFixed(3)}</small>`;
        li.dataset.step = t;
        li.onclick = () => spans[t].scrollIntoView({ block: "center" });
        ol.appendChild(li);
      }
    }
  }

  // -- hovering: the tooltip and the equations -------------------------------------------------------
  const fmt = (x) => (x < 0 ? "\u2212" : "") + Math.abs(x).toFixed(3);
  function stepValues(layer, unit, t) {
    const out = {};
    for (const q of SHOWN) {
      const src = q === "tc" ? "c" : q, [lo, step] = scale(layer, src, unit);
      const at = (k) => { const x = lo + unitCodes(layer, src, unit)[k] * step; return q === "tc" ? Math.tanh(x) : x; };
      out[q] = at(t);
      if (q === "c") out.cPrev = t > 0 ? at(t - 1) : 0;
    }
    return out;
  }
  function showStep(t) {
    const layer = state.layer, unit = state.units[layer], v = stepValues(layer, unit, t);
    const tip = $("tooltip");
    let html = `<div><span class="ch">${showOne(META.tokens[t])}</span>
      step ${t}, ${LAYERS[layer].name} unit ${unit}</div><table class="values">`;
    for (const q of SHOWN) html += `<tr><td>${q === "tc" ? "tanh(c)" : q}</td><td class="v" data-q="${q}">${fmt(v[q])}</td></tr>`;
    html += "</table>";
    const p = predictions();
    if (p) {
      const k = META.predictions.k, L = META.predictions.levels;
      html += `<div>next: <table class="preds">`;
      for (let j = 0; j < k; j++) {
        const id = p.ids[t * k + j], pr = p.probs[t * k + j] / L;
        html += `<tr><td><span class="ch">${showOne(META.vocab[id])}</span></td><td class="v">${pr.toFixed(3)}</td></tr>`;
      }
      html += "</table></div>";
      if (t + 1 < T) {
        const s = p.s[t] * META.predictions.surprisal_hi / L;
        html += `<div class="surprisal">surprisal of the actual next <span class="ch">${showOne(META.tokens[t + 1])}</span>: <b>${s.toFixed(2)}</b> bits</div>`;
      } else html += `<div class="surprisal">(last step: no next character)</div>`;
    } else if (META.final_output) html += `<div>model output after the last step: ${META.final_output.map((x) => x.toFixed(3)).join(", ")}</div>`;
    tip.innerHTML = html;
    tip.hidden = false;
    $("eq-where").textContent = `step ${t} ('${show(META.tokens[t])}'), ${LAYERS[layer].name} unit ${unit}`;
    $("eq-f").textContent = `= ${fmt(v.f)}`;
    $("eq-i").textContent = `= ${fmt(v.i)}`;
    $("eq-g").textContent = `= ${fmt(v.g)}`;
    $("eq-c").textContent = `= ${fmt(v.f)} \u00d7 ${fmt(v.cPrev)} + ${fmt(v.i)} \u00d7 ${fmt(v.g)} = ${fmt(v.c)}`;
    $("eq-o").textContent = `= ${fmt(v.o)}`;
    $("eq-h").textContent = `= ${fmt(v.o)} \u00d7 ${fmt(v.tc)} = ${fmt(v.h)}`;
  }
  textEl.addEventListener("mouseover", (e) => {
    const s = e.target;
    if (s.k === undefined) return;
    if (state.hover >= 0) spans[state.hover].classList.remove("hover");
    state.hover = s.k;
    s.classList.add("hover");
    showStep(s.k);
    const tip = $("tooltip"), r = s.getBoundingClientRect();
    tip.style.left = Math.min(window.innerWidth - 370, r.right + 8) + "px";
    tip.style.top = Math.min(window.innerHeight - tip.offsetHeight - 4, r.bottom + 4) + "px";
  });
  textEl.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });

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
  function fillList(ol, items, label) {
    ol.innerHTML = "";
    for (const [u, x] of items) {
      const li = document.createElement("li");
      li.dataset.unit = u;
      li.dataset.score = x;
      li.textContent = `unit ${u}: ${label} ${x >= 0 ? "+" : "\u2212"}${Math.abs(x).toFixed(3)}`;
      li.onclick = () => selectUnit(state.layer, u);
      ol.appendChild(li);
    }
    markLists();
  }
  function markLists() {
    for (const li of document.querySelectorAll("ol.units li"))
      li.classList.toggle("current", +li.dataset.unit === state.units[state.layer]);
  }
  function search(pattern, mode, against) {
    const note = $("search-note");
    let s;
    try { s = signal(pattern, mode); } catch (e) {
      note.textContent = `not a regular expression: ${e.message}`;
      note.className = "note error";
      return [];
    }
    const covered = s.reduce((a, b) => a + (b > 0 ? 1 : 0), 0);
    note.className = "note";
    note.textContent = mode === "line-position" ? `position in line, against ${against} of ${LAYERS[state.layer].name}`
      : `${covered} of ${T} characters inside a match, against ${against} of ${LAYERS[state.layer].name}`;
    state.ranked = rank(correlations(s, state.layer, against), 20, true);
    fillList($("ranked"), state.ranked, "r =");
    return state.ranked;
  }
  function runSearch() { return search($("pattern").value, $("signal").value, $("against").value); }
  $("run-search").onclick = runSearch;
  $("pattern").addEventListener("keydown", (e) => { if (e.key === "Enter") runSearch(); });
  for (const b of document.querySelectorAll(".presets button")) {
    b.onclick = () => { $("pattern").value = b.dataset.pattern; $("signal").value = b.dataset.signal; runSearch(); };
  }

  // -- units most active here (search.py: most_active) ---------------------------------------------
  function mostActive(start, end, k) {
    const layer = state.layer, q = state.q, H = LAYERS[layer].units, z = new Float64Array(H);
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
    state.active = rank(z, 20, false);
    $("active-note").textContent = `steps ${start}\u2013${end - 1} ("${META.tokens.slice(start, Math.min(end, start + 40)).map(show).join("")}"), ${QNAMES[q]}: mean here above the mean over the text, in standard deviations`;
    fillList($("active-list"), state.active, "z =");
    return state.active;
  }
  textEl.addEventListener("mouseup", () => {
    const sel = window.getSelection();
    if (!sel || sel.isCollapsed) return;
    const span = (n) => (n && n.nodeType === 3 ? n.parentNode : n);
    const a = span(sel.anchorNode), b = span(sel.focusNode);
    if (!a || !b || a.k === undefined || b.k === undefined) return;
    const start = Math.min(a.k, b.k), end = Math.max(a.k, b.k) + 1;
    mostActive(start, end, 20);
  });

  // -- gate saturation scatter (search.py: saturation) ----------------------------------------------
  const GATE_COLOURS = { i: "#2166ac", f: "#1a9850", o: "#d6604d" };
  const dots = [];
  (function scatters() {
    const NS = "http://www.w3.org/2000/svg", W = 180, P = 18;
    LAYERS.forEach((L, layer) => {
      const fig = document.createElement("figure"), svg = document.createElementNS(NS, "svg");
      svg.setAttribute("width", W + P); svg.setAttribute("height", W + P);
      const el = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const a in attrs) e.setAttribute(a, attrs[a]); svg.appendChild(e); return e; };
      el("rect", { x: P, y: 0, width: W, height: W, fill: "#fff", stroke: "#ccc" });
      el("line", { x1: P, y1: 0, x2: P + W, y2: W, stroke: "#ddd" });  // x + y = 1: always saturated
      for (const [tx, x, y, a] of [["0", P, W + 14, "start"], ["1", P + W, W + 14, "end"], ["1", P - 4, 10, "end"]]) {
        const t = el("text", { x, y, "font-size": 10, "text-anchor": a }); t.textContent = tx;
      }
      for (const g of ["i", "f", "o"]) {
        const sat = L.saturation[g];
        for (let u = 0; u < L.units; u++) {
          const c = el("circle", { cx: P + sat.left[u] * W, cy: W - sat.right[u] * W, r: 2.6, fill: GATE_COLOURS[g] });
          c.dataset.layer = layer; c.dataset.unit = u; c.dataset.gate = g;
          const title = document.createElementNS(NS, "title");
          title.textContent = `${L.name} unit ${u}, gate ${g}: ${(100 * sat.left[u]).toFixed(1)}% < 0.1, ${(100 * sat.right[u]).toFixed(1)}% > 0.9`;
          c.appendChild(title);
          c.onclick = () => selectUnit(layer, u);
          dots.push(c);
        }
      }
      const cap = document.createElement("figcaption");
      cap.innerHTML = `${L.name}: ` + ["i", "f", "o"].map((g) => `<span style="color:${GATE_COLOURS[g]}">\u25cf ${g}</span>`).join(" ");
      fig.appendChild(svg); fig.appendChild(cap);
      $("scatters").appendChild(fig);
    });
  })();
  function markScatter() {
    for (const c of dots) c.classList.toggle("current", +c.dataset.layer === state.layer && +c.dataset.unit === state.units[state.layer]);
  }

  // -- controls ----------------------------------------------------------------------------------
  LAYERS.forEach((L, k) => { const o = document.createElement("option"); o.value = k; o.textContent = `${L.name} (${L.units} units)`; $("layer").appendChild(o); });
  function selectUnit(layer, unit) {
    const H = LAYERS[layer].units;
    unit = Math.max(0, Math.min(H - 1, Math.floor(+unit) || 0));
    const t0 = performance.now();
    if (layer !== state.layer) {  // the lists ranked the units of the other layer
      state.ranked = []; state.active = [];
      for (const id of ["ranked", "active-list", "search-note"]) $(id).innerHTML = "";
      $("active-note").textContent = "Select a stretch of the text with the mouse.";
    }
    state.layer = layer;
    state.units[layer] = unit;
    redraw();
    return performance.now() - t0;
  }
  $("layer").onchange = () => selectUnit(+$("layer").value, state.units[+$("layer").value]);
  $("unit").onchange = () => selectUnit(state.layer, $("unit").value);
  $("quantity").onchange = () => { state.q = $("quantity").value; redraw(); };

  const info = [META.source, `${T.toLocaleString()} characters`];
  if (META.model) info.push(META.model);
  if (META.predictions && T > 1) {
    let tot = 0;
    const p = predictions();
    for (let t = 0; t < T - 1; t++) tot += p.s[t];
    info.push(`${(tot * META.predictions.surprisal_hi / META.predictions.levels / (T - 1)).toFixed(3)} bits per character on this text`);
  }
  $("title").textContent = META.title || "";
  $("info").textContent = info.filter(Boolean).join(" \u00b7 ");
  selectUnit(0, 0);

  // For tests and benchmarks: the same entry points the controls use.
  window.lstmlabInspect = { state, selectUnit, search, mostActive, unitValues, stepValues, topContexts, showStep,
                            ready: performance.now() };
})();
