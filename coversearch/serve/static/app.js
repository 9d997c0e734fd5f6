// coversearch page: plain JS over the JSON API (no build step).
"use strict";

const $ = (s) => document.querySelector(s);
const state = { info: null, suggestions: [], active: -1, timer: null, seq: 0 };

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function getJSON(url) {
  const r = await fetch(url);
  const body = await r.json().catch(() => ({ detail: r.statusText }));
  if (!r.ok) throw Object.assign(new Error(body.detail || r.statusText), { status: r.status, body });
  return body;
}

function showError(e) {
  const el = $("#error");
  if (!e) { el.hidden = true; el.textContent = ""; return; }
  let msg = e.message || String(e);
  if (e.body && e.body.suggestions && e.body.suggestions.length) msg = msg.split("; did you mean")[0] + " — did you mean " + e.body.suggestions.join(", ") + "?";
  el.textContent = msg;
  el.hidden = false;
}

// ------------------------------------------------------------------ index info
async function loadInfo() {
  try {
    const info = await getJSON("/api/index");
    state.info = info;
    const m = info.manifest;
    $("#index-info").textContent = `${m.count.toLocaleString()} performances of ${info.n_works.toLocaleString()} works · ` +
      `${m.index_kind} index · model ${m.model_hash} · ${m.feature}`;
    const exts = info.audio_extensions.length ? info.audio_extensions.join(" ") : "(audio stage not installed)";
    $("#file").accept = [".h5", ".hdf5"].concat(info.audio_extensions).join(",");
    $("#drop").title = `accepted: .h5 ${exts}; up to ${info.max_upload_mb} MB`;
  } catch (e) { showError(e); }
}

// ------------------------------------------------------------------ autocomplete
function renderSuggestions() {
  const ul = $("#suggest");
  ul.innerHTML = state.suggestions.map((s, i) =>
    `<li role="option" data-id="${esc(s.perf_id)}" class="${i === state.active ? "active" : ""}">` +
    `<span class="id">${esc(s.perf_id)}</span><span>${esc(s.perf_title || s.work_title)}</span>` +
    `<span class="muted">${esc(s.perf_artist)}</span><span class="work">${esc(s.work_id)}</span></li>`).join("");
  ul.hidden = state.suggestions.length === 0;
}

function closeSuggestions() { state.suggestions = []; state.active = -1; renderSuggestions(); }

async function suggest(text) {
  const seq = ++state.seq;
  if (!text.trim()) { closeSuggestions(); return; }
  try {
    const out = await getJSON(`/api/search?q=${encodeURIComponent(text)}&limit=8`);
    if (seq !== state.seq) return;  // a later keystroke won
    state.suggestions = out.results;
    state.active = out.results.length ? 0 : -1;
    renderSuggestions();
  } catch (e) { /* autocomplete is best effort */ }
}

function pick(id) {
  $("#q").value = id;
  closeSuggestions();
  runQuery(id);
}

// ------------------------------------------------------------------ results
function renderResults(out, label) {
  const q = out.query;
  const rows = out.results;
  const maxd = Math.max(1.0, ...rows.map((r) => r.distance));
  const tb = $("#results tbody");
  tb.innerHTML = rows.map((r) => {
    const w = Math.max(0, Math.min(100, (100 * r.distance) / maxd));
    return `<tr data-id="${esc(r.perf_id)}" class="${r.same_work ? "same" : ""}" title="search from ${esc(r.perf_id)}">` +
      `<td class="rank">${r.rank}</td><td class="mark" title="${r.same_work ? "same work as the query" : ""}">${r.same_work ? "★" : ""}</td>` +
      `<td class="id">${esc(r.perf_id)}</td><td>${esc(r.perf_title || r.work_title)}</td><td>${esc(r.perf_artist)}</td>` +
      `<td class="work">${esc(r.work_id)}</td>` +
      `<td><div class="dist"><div class="bar"><span style="width:${w.toFixed(1)}%"></span></div>` +
      `<span class="num">${r.distance.toFixed(4)}</span></div></td></tr>`;
  }).join("");
  $("#results").hidden = false;
  $("#query-card").hidden = false;
  $("#query-title").textContent = label;
  const nsame = rows.filter((r) => r.same_work).length;
  const vers = out.profile ? out.profile.versions.length : null;
  let meta = q.work_id ? `work ${q.work_id} · ${nsame} of its ${vers ?? "?"} other version(s) in the top ${rows.length}` :
    `work unknown · top ${rows.length}`;
  if (q.rerank) meta += ` · re-ranked (shortlist ${q.rerank.shortlist})`;
  if (q.seconds !== undefined) meta += ` · analysed in ${q.seconds.toFixed(1)} s`;
  $("#query-meta").textContent = meta;
  drawProfile(out.profile, rows);
}

function drawProfile(p, rows) {
  const svg = $("#profile-svg");
  if (!p) { svg.innerHTML = ""; $("#profile-caption").textContent = ""; return; }
  const W = 640, H = 150, L = 36, R = 12, T = 24, B = 26;
  const edges = p.rest.edges, counts = p.rest.counts;
  const xmax = edges[edges.length - 1] || 1;
  const x = (d) => L + ((W - L - R) * d) / xmax;
  const cmax = Math.max(1, ...counts);
  const parts = [];
  counts.forEach((c, i) => {
    if (!c) return;
    const h = ((H - T - B) * c) / cmax;
    parts.push(`<rect class="rest" x="${x(edges[i]).toFixed(1)}" y="${(H - B - h).toFixed(1)}" width="${Math.max(1, x(edges[i + 1]) - x(edges[i]) - 1).toFixed(1)}" height="${h.toFixed(1)}"><title>${c} other performance(s) at ${edges[i].toFixed(3)}–${edges[i + 1].toFixed(3)}</title></rect>`);
  });
  p.versions.forEach((v) => {
    const xv = x(v.distance).toFixed(1);
    parts.push(`<line class="version" x1="${xv}" x2="${xv}" y1="${T - 12}" y2="${H - B}"><title>${esc(v.perf_id)}: ${v.distance.toFixed(4)}</title></line>`);
  });
  if (rows.length) {
    const cut = x(rows[rows.length - 1].distance).toFixed(1);
    parts.push(`<line class="cut" x1="${cut}" x2="${cut}" y1="${T - 14}" y2="${H - B}"></line><text x="${+cut + 3}" y="${T - 4}">top ${rows.length}</text>`);
  }
  parts.push(`<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#889"></line>`);
  for (let i = 0; i <= 4; i++) {
    const d = (xmax * i) / 4;
    parts.push(`<text x="${x(d).toFixed(1)}" y="${H - B + 15}" text-anchor="middle">${d.toFixed(2)}</text>`);
  }
  parts.push(`<text x="${W - R}" y="${H - 2}" text-anchor="end">cosine distance to the query</text>`);
  svg.innerHTML = parts.join("");
  const vtext = p.work_id ? `red: the ${p.versions.length} other version(s) of ${p.work_id}` : "red: (the query's work is unknown)";
  $("#profile-caption").textContent = `${vtext}; grey: the other ${p.rest.n.toLocaleString()} performances` +
    (p.rest.sampled ? " (a fixed sample)" : "") + "; dashed: the last result shown.";
}

async function runQuery(id) {
  showError(null);
  id = id.trim();
  if (!id) return;
  const k = $("#k").value, rerank = $("#rerank").checked;
  if (location.hash.slice(1) !== encodeURIComponent(id)) history.pushState(null, "", "#" + encodeURIComponent(id));
  try {
    const [out, item] = await Promise.all([
      getJSON(`/api/query/${encodeURIComponent(id)}?k=${k}&rerank=${rerank}&profile=true`),
      getJSON(`/api/items/${encodeURIComponent(id)}`),
    ]);
    const it = item.item;
    renderResults(out, `${it.perf_id} · ${it.perf_title || it.work_title || ""}${it.perf_artist ? " — " + it.perf_artist : ""}`);
  } catch (e) { showError(e); }
}

// ------------------------------------------------------------------ upload
function upload(file) {
  showError(null);
  const drop = $("#drop"), bar = $("#progress-bar"), prog = $("#progress"), text = $("#progress-text");
  const fd = new FormData();
  fd.append("file", file);
  fd.append("k", $("#k").value);
  fd.append("rerank", $("#rerank").checked);
  fd.append("profile", "true");
  const xhr = new XMLHttpRequest();
  let timer = null;
  const t0 = Date.now();
  drop.classList.add("busy");
  prog.hidden = false;
  prog.classList.remove("analysing");
  bar.style.width = "0";
  text.textContent = `uploading ${file.name}…`;
  xhr.upload.onprogress = (ev) => {
    if (ev.lengthComputable) {
      bar.style.width = `${((100 * ev.loaded) / ev.total).toFixed(0)}%`;
      text.textContent = `uploading ${file.name}: ${((100 * ev.loaded) / ev.total).toFixed(0)}%`;
    }
  };
  xhr.upload.onload = () => {
    prog.classList.add("analysing");
    bar.style.width = "";
    timer = setInterval(() => { text.textContent = `analysing ${file.name}… ${((Date.now() - t0) / 1000).toFixed(0)} s`; }, 250);
  };
  const done = () => { clearInterval(timer); drop.classList.remove("busy"); prog.hidden = true; prog.classList.remove("analysing"); };
  xhr.onload = () => {
    done();
    let body;
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = { detail: xhr.statusText }; }
    if (xhr.status !== 200) {
      const retry = xhr.getResponseHeader("Retry-After");
      showError(new Error(`${body.detail || xhr.statusText}` + (retry ? ` (retry in ${retry} s)` : "")));
      text.textContent = `${file.name}: not analysed (HTTP ${xhr.status})`;
      return;
    }
    text.textContent = `${file.name}: analysed in ${body.query.seconds.toFixed(1)} s`;
    renderResults(body, `${file.name} (uploaded ${body.query.kind})`);
  };
  xhr.onerror = () => { done(); showError(new Error("the upload failed (connection closed)")); };
  xhr.open("POST", "/api/query/file");
  xhr.send(fd);
}

// ------------------------------------------------------------------ wiring
function init() {
  const q = $("#q");
  q.addEventListener("input", () => { clearTimeout(state.timer); state.timer = setTimeout(() => suggest(q.value), 90); });
  q.addEventListener("keydown", (ev) => {
    const n = state.suggestions.length;
    if (ev.key === "ArrowDown" && n) { state.active = (state.active + 1) % n; renderSuggestions(); ev.preventDefault(); }
    else if (ev.key === "ArrowUp" && n) { state.active = (state.active - 1 + n) % n; renderSuggestions(); ev.preventDefault(); }
    else if (ev.key === "Escape") closeSuggestions();
    else if (ev.key === "Enter" && n && state.active >= 0) { ev.preventDefault(); pick(state.suggestions[state.active].perf_id); }
  });
  q.addEventListener("blur", () => setTimeout(closeSuggestions, 150));
  $("#suggest").addEventListener("mousedown", (ev) => {
    const li = ev.target.closest("li");
    if (li) { ev.preventDefault(); pick(li.dataset.id); }
  });
  $("#search-form").addEventListener("submit", (ev) => { ev.preventDefault(); closeSuggestions(); runQuery(q.value); });
  $("#results tbody").addEventListener("click", (ev) => {
    const tr = ev.target.closest("tr");
    if (tr) { q.value = tr.dataset.id; runQuery(tr.dataset.id); window.scrollTo({ top: 0, behavior: "smooth" }); }
  });

  const drop = $("#drop"), input = $("#file");
  drop.addEventListener("click", () => input.click());
  drop.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") input.click(); });
  input.addEventListener("change", () => { if (input.files.length) upload(input.files[0]); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (ev) => { ev.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (ev) => { if (ev.dataTransfer.files.length) upload(ev.dataTransfer.files[0]); });

  window.addEventListener("popstate", () => { const id = decodeURIComponent(location.hash.slice(1)); if (id) { q.value = id; runQuery(id); } });
  loadInfo();
  const start = decodeURIComponent(location.hash.slice(1));
  if (start) { q.value = start; runQuery(start); }
}

init();
