// lstmlab inspect, the view: the text, the tooltip, the equations, the lists and the scatters.
// Runs after page_data.js (META, T, TP, LAYERS, the decoders) and page_search.js, in the same scope.
const QNAMES = { i: "input gate i", f: "forget gate f", g: "candidate g", c: "cell c", tc: "tanh(c)",
                 o: "output gate o", h: "hidden h" };
const SHOWN = ["i", "f", "g", "c", "tc", "o", "h"];
const state = { layer: 0, q: "c", units: LAYERS.map(() => 0), hover: -1, ranked: [], active: [] };
const $ = (id) => document.getElementById(id);

// -- the text, one span per token ----------------------------------------------------------------
const textEl = $("text");
const spans = new Array(T);
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
    if (tok === "\n") s.className = "nl";
    s.textContent = tok === "\n" ? "\u21b5\n" : tok;  // a classifier's word token ends in a space or a newline
    const eol = tok.endsWith("\n");
    if (eol) lines++;
    spans[t] = s;
    chunk.appendChild(s);
    if (++size >= 3000 || (size >= 400 && eol)) { close(); chunk = null; }
  }
  close();
  textEl.appendChild(frag);
})();

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

function redraw() {
  const { layer, q } = state, unit = state.units[layer];
  const v = unitValues(layer, q, unit);
  let maxAbs = 1e-12;
  if (q === "c") for (let t = 0; t < T; t++) maxAbs = Math.max(maxAbs, Math.abs(v[t]));
  const pal = q === "i" || q === "f" || q === "o" ? SEQ : DIV;
  for (let t = 0; t < T; t++) spans[t].style.backgroundColor = pal[colourIndex(q, v[t], maxAbs)];
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

function show(tok) { return tok === "\t" ? "\u21e5" : tok.replace(/\n/g, "\u21b5"); }  // "word\n" too
const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/"/g, "&quot;");  // text into HTML
function showOne(tok) { return esc(tok === " " ? "\u2423" : show(tok)); }
function windowHtml(t) {
  const k = textOf[t], end = k + 1 < STARTS.length ? STARTS[k + 1] : T;  // within the text of step t
  const a = Math.max(STARTS[k], t - 30), b = Math.min(end, t + 8);
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

// A classifier: P(class | the text up to step t), most likely first; at a text's last step, its prediction.
function classScores(t) {
  const p = classProbs(), names = META.classes.names, C = names.length, L = META.classes.levels;
  const k = textOf[t], last = k + 1 < STARTS.length ? STARTS[k + 1] - 1 : T - 1;
  const order = names.map((_, c) => c).sort((a, b) => p[t * C + b] - p[t * C + a]);
  let html = `<div>class scores after this ${TOKEN}${t === last ? " (the last: the model's prediction)" : ""}:` +
    `<table class="classes">`;
  for (const c of order.slice(0, 5))
    html += `<tr><td>${esc(names[c])}</td><td class="v">${(p[t * C + c] / L).toFixed(3)}</td></tr>`;
  html += "</table></div>";
  const truth = META.targets ? `, labelled <b>${esc(META.targets[k])}</b>` : "";
  return html + `<div class="surprisal">text ${k + 1} of ${STARTS.length}${truth}, ${TOKEN} ${t - STARTS[k] + 1} of ${last - STARTS[k] + 1}</div>`;
}

// -- hovering: the tooltip and the equations -------------------------------------------------------
const fmt = (x) => (x < 0 ? "\u2212" : "") + Math.abs(x).toFixed(3);
function stepValues(layer, unit, t) {
  const out = {};
  for (const q of SHOWN) {
    const src = q === "tc" ? "c" : q, [lo, step] = scale(layer, src, unit);
    const at = (k) => { const x = lo + unitCodes(layer, src, unit)[k] * step; return q === "tc" ? Math.tanh(x) : x; };
    out[q] = at(t);
    if (q === "c") out.cPrev = t > STARTS[textOf[t]] ? at(t - 1) : 0;  // each text starts from c = 0
  }
  return out;
}
function showStep(t) {
  const layer = state.layer, unit = state.units[layer], v = stepValues(layer, unit, t);
  const tip = $("tooltip");
  let html = `<div><span class="ch">${showOne(META.tokens[t])}</span>
    step ${t}, ${esc(LAYERS[layer].name)} unit ${unit}</div><table class="values">`;
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
  } else if (META.classes) html += classScores(t);
  else if (META.final_output) html += `<div>model output after the last step: ${META.final_output.map((x) => x.toFixed(3)).join(", ")}</div>`;
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
    : `${covered} of ${T} ${TOKEN}s inside a match, against ${against} of ${LAYERS[state.layer].name}`;
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

// -- units most active here ---------------------------------------------
function mostActive(start, end, k) {
  const layer = state.layer, q = state.q;
  state.active = rank(activeScores(layer, q, start, end), k, false);
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
    cap.innerHTML = `${esc(L.name)}: ` + ["i", "f", "o"].map((g) => `<span style="color:${GATE_COLOURS[g]}">\u25cf ${g}</span>`).join(" ");
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

const info = [META.source, `${T.toLocaleString()} ${TOKEN}s`];
if (META.model) info.push(META.model);
if (META.predictions && T > 1) {
  let tot = 0;
  const p = predictions();
  for (let t = 0; t < T - 1; t++) tot += p.s[t];
  info.push(`${(tot * META.predictions.surprisal_hi / META.predictions.levels / (T - 1)).toFixed(3)} bits per character on this text`);
}
$("title").textContent = META.title || "";
$("eq-where").textContent = `(hover a ${TOKEN})`;
$("info").textContent = info.filter(Boolean).join(" \u00b7 ");
selectUnit(0, 0);

// For tests and benchmarks: the same entry points the controls use.
window.lstmlabInspect = { state, selectUnit, search, mostActive, unitValues, stepValues, topContexts, showStep,
                          ready: performance.now() };
