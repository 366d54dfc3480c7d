// The cnndsl playground page: sends the spec to the local server as it is typed (one request in flight,
// the newest text next), and shows what comes back: diagnostics underlined in the editor and listed, the
// diagram and the summary table. Clicking a node or a row selects its line; moving in the editor marks
// the line's nodes. Text from the server is inserted as text, never as markup; the diagram is SVG from
// Graphviz, inserted after removing anything in it that could run.
"use strict";

const $ = (id) => document.getElementById(id);
const ed = $("editor");
const back = $("backdrop");
const st = { diags: [], lines: {}, inflight: false, pending: false, timer: 0, saved: "", updates: 0, file: false };
window.cnndsl = st; // for the browser tests and the benchmark: st.updates, st.lastMs

function offsets(text) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function paint() {
  // the backdrop holds the same text as the editor, with the diagnostics' spans marked
  const text = ed.value;
  const starts = offsets(text);
  const at = (line, col) => Math.min((starts[line - 1] ?? text.length) + col - 1, text.length);
  const marks = st.diags.map((d) => {
    let a = at(d.line, d.col);
    let b = Math.max(at(d.end_line, d.end_col), a + 1);
    return [a, b, d.severity];
  }).sort((x, y) => x[0] - y[0]);
  back.textContent = "";
  let pos = 0;
  for (const [a0, b, sev] of marks) {
    const a = Math.max(a0, pos);
    if (a >= b) continue;
    back.append(text.slice(pos, a));
    const m = document.createElement("mark");
    m.className = sev;
    m.textContent = text.slice(a, b) || " "; // past the end of the text: a blank to underline
    back.append(m);
    pos = Math.min(b, text.length);
  }
  back.append(text.slice(pos) + "\n");
  back.scrollTop = ed.scrollTop;
  back.scrollLeft = ed.scrollLeft;
}

function foldChoice() {
  const v = $("fold").value;
  return v === "auto" ? null : v === "fold";
}

function schedule() {
  $("dirty").hidden = ed.value === st.saved;
  paint();
  clearTimeout(st.timer);
  st.timer = setTimeout(check, 30);
}

async function check() {
  if (st.inflight) { st.pending = true; return; }
  st.inflight = true;
  const text = ed.value;
  const t0 = performance.now();
  try {
    const r = await fetch("/api/check", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, fold: foldChoice() }),
    });
    const j = await r.json();
    if (!r.ok) { $("status").textContent = j.error || r.statusText; return; }
    if (ed.value !== text) { st.pending = true; return; }
    show(j);
    st.lastMs = performance.now() - t0;
    st.updates += 1;
    $("status").textContent = `updated in ${Math.round(st.lastMs)} ms`;
  } catch (e) {
    $("status").textContent = "the server does not answer";
  } finally {
    st.inflight = false;
    if (st.pending) { st.pending = false; check(); }
  }
}

function show(j) {
  st.diags = j.diagnostics;
  st.lines = j.lines || {};
  paint();
  const list = $("diagnostics");
  list.textContent = "";
  for (const d of j.diagnostics) {
    const li = document.createElement("li");
    li.className = d.severity;
    li.textContent = d.text;
    li.dataset.line = d.line;
    li.addEventListener("click", () => selectLine(d.line));
    list.append(li);
  }
  if (!j.diagnostics.length) {
    const li = document.createElement("li");
    li.className = "ok";
    li.textContent = j.totals ? "ok" : "";
    list.append(li);
  }
  const t = j.totals;
  $("totals").textContent = t ? `${t.name}: input ${t.input} → ${t.outputs.join(", ")} · ${t.layers} layers · ` +
    `${t.params.toLocaleString("en")} parameters · ${t.macs.toLocaleString("en")} MACs` : "";
  const body = $("summary").tBodies[0];
  body.textContent = "";
  for (const l of j.layers) {
    const tr = body.insertRow();
    tr.dataset.line = l.line;
    for (const [v, num] of [[l.name], [l.label], [l.shape], [l.params.toLocaleString("en"), 1],
      [l.macs.toLocaleString("en"), 1]]) {
      const td = tr.insertCell();
      td.textContent = v;
      if (num) td.className = "n";
    }
    tr.addEventListener("click", () => selectLine(l.line));
  }
  const box = $("diagram");
  if (j.svg) {
    const doc = new DOMParser().parseFromString(j.svg, "image/svg+xml");
    const svg = doc.documentElement;
    if (svg.nodeName === "svg") {
      for (const bad of svg.querySelectorAll("script, foreignObject")) bad.remove();
      for (const el of svg.querySelectorAll("*")) {
        for (const a of [...el.attributes]) {
          if (/^on/i.test(a.name) || /^\s*javascript:/i.test(a.value)) el.removeAttribute(a.name);
        }
      }
      box.replaceChildren(document.importNode(svg, true));
    }
  } else if (j.totals || j.note) {
    box.replaceChildren();
  }
  $("note").textContent = j.note || "";
  markLine();
}

function lineStart(line) {
  const starts = offsets(ed.value);
  return [starts[line - 1] ?? ed.value.length, (starts[line] ?? ed.value.length + 1) - 1];
}

function selectLine(line) {
  const [a, b] = lineStart(line);
  ed.focus();
  ed.setSelectionRange(a, b);
  const lh = parseFloat(getComputedStyle(ed).lineHeight) || 19;
  ed.scrollTop = Math.max(0, (line - 1) * lh - ed.clientHeight / 3);
  markLine();
}

function currentLine() {
  return ed.value.slice(0, ed.selectionStart).split("\n").length;
}

function markLine() {
  const line = currentLine();
  for (const g of document.querySelectorAll("#diagram g.node")) {
    const title = g.querySelector("title");
    g.classList.toggle("sel", !!title && st.lines[title.textContent] === line);
  }
  for (const tr of $("summary").tBodies[0].rows) tr.classList.toggle("sel", Number(tr.dataset.line) === line);
}

async function save(mode) {
  const r = await fetch("/api/save", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: ed.value, mode }),
  });
  const j = await r.json();
  if (j.conflict && confirm(j.error)) return save("overwrite");
  if (j.saved) {
    st.saved = ed.value;
    $("dirty").hidden = true;
    $("status").textContent = `saved ${j.saved}`;
  } else {
    $("status").textContent = j.error || "not saved";
  }
}

$("diagram").addEventListener("click", (e) => {
  const g = e.target.closest("g.node");
  const title = g && g.querySelector("title");
  if (title && st.lines[title.textContent]) selectLine(st.lines[title.textContent]);
});
ed.addEventListener("input", schedule);
ed.addEventListener("scroll", () => { back.scrollTop = ed.scrollTop; back.scrollLeft = ed.scrollLeft; });
for (const ev of ["keyup", "click", "select"]) ed.addEventListener(ev, markLine);
ed.addEventListener("keydown", (e) => {
  if (e.key === "Tab") {
    e.preventDefault();
    ed.setRangeText("  ", ed.selectionStart, ed.selectionEnd, "end");
    schedule();
  }
});
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); if (st.file) save(); }
});
$("save").addEventListener("click", () => save());
$("fold").addEventListener("change", check);

(async () => {
  const j = await (await fetch("/api/spec")).json();
  $("name").textContent = j.name;
  st.file = j.file;
  $("save").disabled = !j.file;
  ed.value = j.text;
  st.saved = j.text;
  schedule();
})();
