// trk view: the runs table, run pages, compare and scalar plots.
// Every run-provided string reaches the page through textContent or an
// attribute value (el() below), never as HTML.
"use strict";

const main = document.getElementById("main");
const statusLine = document.getElementById("status-line");
let config = {write: false};
let timer = null;          // the current view's polling timer
let viewToken = 0;         // bumps on navigation: late answers for an old view are dropped
const selected = new Set(); // run ids ticked in the runs table
const expanded = new Set(); // pipeline/batch runs shown with their children

// -- helpers -----------------------------------------------------------------

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "className") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function token() {
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    sessionStorage.setItem("trk-token", params.get("token"));
    history.replaceState(null, "", location.pathname + location.hash); // keep the token out of history
  }
  return sessionStorage.getItem("trk-token") || "";
}
const sessionToken = token();

async function api(path, options) {
  const r = await fetch(path, options);
  const body = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(body.error + (body.hint ? " " + body.hint : ""));
  return body;
}

function post(path, body) {
  return api(path, {method: "POST", headers: {"Content-Type": "application/json", "X-Trk-Token": sessionToken},
                    body: JSON.stringify(body || {})});
}

function statusBadge(s) { return el("span", {className: "status " + s}, s); }
function runLink(id, text) { return el("a", {href: "#/run/" + id}, text || id.slice(0, 8)); }
function errorBox(e) { return el("div", {className: "error-box"}, String(e.message || e)); }
function fmtNum(v) {
  if (v === null || v === undefined) return "";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  return (a !== 0 && (a < 1e-4 || a >= 1e6)) ? v.toExponential(4) : String(+v.toPrecision(6));
}
function poll(fn, ms) { clearInterval(timer); timer = setInterval(fn, ms); }
function hashParams() { return new URLSearchParams(location.hash.split("?")[1] || ""); }
function setHashParams(route, params) {
  const q = params.toString();
  const h = route + (q ? "?" + q : "");
  if (location.hash !== h) history.replaceState(null, "", location.pathname + h);
}

// -- runs table --------------------------------------------------------------

const runsState = {q: "", status: "", op: "", tag: "", sort: "started", desc: true, offset: 0, limit: 100,
                   scalars: null, last: ""};

function runsQuery(extra) {
  const p = new URLSearchParams();
  for (const k of ["q", "status", "op", "tag", "sort"]) if (runsState[k]) p.set(k, runsState[k]);
  p.set("desc", runsState.desc ? "1" : "0");
  p.set("offset", runsState.offset);
  p.set("limit", runsState.limit);
  if (runsState.scalars !== null) p.set("scalars", runsState.scalars.join(","));
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return "/api/runs?" + p;
}

function showRuns() {
  const my = viewToken;
  const input = (name, placeholder) => el("input", {type: "text", placeholder, value: runsState[name],
    "data-filter": name, onchange: (e) => { runsState[name] = e.target.value.trim(); runsState.offset = 0; load(); }});
  const status = el("select", {"data-filter": "status", onchange: (e) => {
    runsState.status = e.target.value; runsState.offset = 0; load(); }},
    ["", "running", "completed", "error", "terminated", "staged"].map(
      (s) => el("option", {value: s, selected: s === runsState.status}, s || "any status")));
  const scalarsInput = el("input", {type: "text", placeholder: "scalars (comma-separated)", size: 30,
    onchange: (e) => { const v = e.target.value.trim(); runsState.scalars = v ? v.split(",").map((s) => s.trim()) : null; load(); }});
  const compareBtn = el("button", {id: "compare-selected", onclick: () => go("#/compare?runs=" + [...selected].join(","))}, "Compare selected");
  const plotBtn = el("button", {id: "plot-selected", onclick: () => go("#/plots?runs=" + [...selected].join(","))}, "Plot selected");
  const table = el("div", {id: "runs-table"});
  const pager = el("div", {className: "pager"});
  main.replaceChildren(el("h1", {}, "Runs"),
    el("div", {className: "bar"}, input("q", "label contains"), status, input("op", "operation"), input("tag", "tag"),
       scalarsInput, compareBtn, plotBtn),
    table, pager);
  const updateButtons = () => { compareBtn.disabled = plotBtn.disabled = selected.size === 0; };
  updateButtons();

  async function load(quiet) {
    let page;
    try {
      page = await api(runsQuery());
    } catch (e) { if (!quiet) table.replaceChildren(errorBox(e)); return; }
    if (my !== viewToken) return;
    const children = {};
    for (const id of expanded) {
      try { children[id] = (await api(`/api/runs?parent=${id}&limit=1000&scalars=${page.scalars.join(",")}`)).rows; }
      catch (e) { expanded.delete(id); }
    }
    if (my !== viewToken) return;
    const text = JSON.stringify([page, children]);
    if (quiet && text === runsState.last) return; // nothing changed: keep the DOM (and the user's focus)
    runsState.last = text;
    if (runsState.scalars === null) scalarsInput.placeholder = page.scalars.join(",") || "scalars (comma-separated)";
    table.replaceChildren(runsTable(page, children, load, updateButtons));
    const end = Math.min(page.offset + page.rows.length, page.total);
    pager.replaceChildren(
      el("button", {disabled: page.offset === 0, onclick: () => { runsState.offset = Math.max(0, page.offset - page.limit); load(); }}, "‹ Newer"),
      el("span", {className: "muted", id: "runs-count"}, `${page.total ? page.offset + 1 : 0}–${end} of ${page.total}`),
      el("button", {disabled: end >= page.total, onclick: () => { runsState.offset = page.offset + page.limit; load(); }}, "Older ›"));
    statusLine.textContent = `updated ${new Date().toLocaleTimeString()}`;
  }
  load();
  poll(() => load(true), 2000);
}

function runsTable(page, children, reload, updateButtons) {
  const flagNames = [...new Set(page.rows.flatMap((r) => Object.keys(r.flags)))].sort().slice(0, 12);
  const cols = [
    ["", null], ["", null], ["run", "id"], ["operation", "operation"], ["started", "started"], ["time", "time"],
    ["status", "status"], ["label", "label"], ["tags", "tags"],
    ...flagNames.map((f) => [f, "flag:" + f]), ...page.scalars.map((s) => [s, "scalar:" + s])];
  const head = el("tr", {}, cols.map(([title, key]) => {
    const sorted = key && runsState.sort === key;
    return el("th", {className: sorted ? "sorted" + (runsState.desc ? "" : " asc") : "", "data-sort": key,
      onclick: key ? () => {
        if (runsState.sort === key) runsState.desc = !runsState.desc; else { runsState.sort = key; runsState.desc = key === "started"; }
        runsState.offset = 0; reload();
      } : null}, title);
  }));
  const body = el("tbody");
  const row = (r, child) => {
    const box = el("input", {type: "checkbox", checked: selected.has(r.id), "data-run": r.id,
      onchange: (e) => { e.target.checked ? selected.add(r.id) : selected.delete(r.id); updateButtons(); }});
    const toggle = r.children ? el("button", {className: "toggle", title: `${r.children} runs`, "data-expand": r.id,
      onclick: () => { expanded.has(r.id) ? expanded.delete(r.id) : expanded.add(r.id); reload(); }},
      expanded.has(r.id) ? "▾" : "▸") : "";
    return el("tr", {className: child ? "child" : "", "data-id": r.id},
      el("td", {}, box), el("td", {}, toggle), el("td", {}, runLink(r.id)),
      el("td", {className: "op"}, (r.step && child ? r.step + ": " : "") + r.operation),
      el("td", {}, r.started), el("td", {}, r.time), el("td", {}, statusBadge(r.status)),
      el("td", {className: "label"}, r.label), el("td", {}, r.tags.map((t) => el("span", {className: "tag"}, t))),
      flagNames.map((f) => el("td", {}, r.flags[f] === undefined ? "" : r.flags[f])),
      page.scalars.map((s) => el("td", {className: "num"}, fmtNum(r.scalars[s]))));
  };
  for (const r of page.rows) {
    body.appendChild(row(r, false));
    for (const c of (expanded.has(r.id) && children[r.id]) || []) body.appendChild(row(c, true));
  }
  if (!page.rows.length) body.appendChild(el("tr", {}, el("td", {colspan: cols.length, className: "muted"}, "No runs.")));
  return el("table", {className: "grid"}, el("thead", {}, head), body);
}

// -- run page ----------------------------------------------------------------

function kv(obj) {
  return el("dl", {className: "kv"}, Object.entries(obj).flatMap(([k, v]) => [el("dt", {}, k),
    el("dd", {}, v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v))]));
}

async function showRun(id) {
  const my = viewToken;
  let r;
  try { r = await api("/api/runs/" + encodeURIComponent(id)); } catch (e) { main.replaceChildren(errorBox(e)); return; }
  if (my !== viewToken) return;
  const out = el("pre", {id: "output"});
  const files = el("div", {id: "files"});
  const preview = el("div", {className: "preview", id: "preview"});
  const parts = [
    el("h1", {}, r.operation, " ", statusBadge(r.status), " ", el("span", {className: "muted"}, r.short_id)),
    r.label ? el("p", {id: "run-label"}, r.label) : null,
    r.tags.length ? el("p", {}, r.tags.map((t) => el("span", {className: "tag"}, t))) : null,
    config.write ? writeActions(r) : null,
    el("div", {className: "cols"},
      el("section", {}, el("h2", {}, "Attributes"), kv(r.attrs)),
      el("section", {}, el("h2", {}, "Flags"), Object.keys(r.flags).length ? kv(r.flags) : el("p", {className: "muted"}, "No flags."))),
    r.dependencies.length || r.upstream.length ? el("section", {}, el("h2", {}, "Dependencies"), dependencies(r)) : null,
    r.steps.length ? el("section", {}, el("h2", {}, "Steps"), el("table", {className: "grid"},
      el("tr", {}, ["step", "run", "operation", "status"].map((h) => el("th", {}, h))),
      r.steps.map((s) => el("tr", {}, el("td", {}, s.step), el("td", {}, runLink(s.id)), el("td", {}, s.operation),
                                el("td", {}, statusBadge(s.status)))))) : null,
    r.scalars.length ? el("section", {}, el("h2", {}, "Scalars ", el("a", {href: "#/plots?runs=" + r.id}, "(plot)")),
      el("table", {className: "grid"}, el("tr", {}, ["scalar", "last", "min", "max", "step", "count"].map((h) => el("th", {}, h))),
        r.scalars.map((s) => el("tr", {}, el("td", {}, s.key), [s.last, s.min, s.max, s.last_step, s.count].map(
          (v) => el("td", {className: "num"}, fmtNum(v))))))) : null,
    el("section", {}, el("h2", {}, "Files"), files, preview),
    el("section", {}, el("h2", {}, "Output"), out),
  ];
  main.replaceChildren(...parts.filter(Boolean));
  listFiles(r, "", files, preview);
  tailOutput(r, out, my);
}

function dependencies(r) {
  const rows = r.upstream.map((u) => el("tr", {},
    el("td", {}, "  ".repeat(u.depth) + (u.depth ? "└ " : "") + u.name),
    el("td", {}, u.state === "missing" ? u.short_id : runLink(u.id)), el("td", {}, u.operation || ""),
    el("td", {}, statusBadge(u.state)),
    el("td", {className: "wrap"}, Object.entries(u.flags).map(([k, v]) => `${k}=${v}`).join(" "))));
  const files = r.dependencies.filter((d) => !d.run).map((d) => el("tr", {}, el("td", {}, d.name), el("td", {}, ""),
    el("td", {}, ""), el("td", {}, ""), el("td", {className: "wrap muted"}, d.sha256 ? "sha256 " + d.sha256 : "")));
  return el("table", {className: "grid", id: "dependencies"},
    el("tr", {}, ["dependency", "run", "operation", "status", "flags / digest"].map((h) => el("th", {}, h))), rows, files);
}

async function listFiles(r, path, box, preview) {
  let d;
  try { d = await api(`/api/runs/${r.id}/files?path=${encodeURIComponent(path)}`); } catch (e) { box.replaceChildren(errorBox(e)); return; }
  const fileUrl = (p, dl) => `/api/runs/${r.id}/file?path=${encodeURIComponent(p)}${dl ? "&download=1" : ""}`;
  const items = [];
  if (path) items.push(el("li", {}, el("a", {href: "javascript:void 0", onclick: () => listFiles(r, path.split("/").slice(0, -1).join("/"), box, preview)}, "../")));
  for (const f of d.entries) {
    if (f.dir) {
      items.push(el("li", {}, el("a", {href: "javascript:void 0", onclick: () => listFiles(r, f.path, box, preview)}, f.name + "/")));
      continue;
    }
    const view = el("a", {href: "javascript:void 0", "data-file": f.path, onclick: () => showFile(r, f, preview, fileUrl)}, f.name);
    items.push(el("li", {}, view, " ", el("span", {className: "muted"}, f.size === null ? "" : `${f.size} B`), " ",
      el("a", {href: fileUrl(f.path, true), download: f.name}, "download")));
  }
  if (!d.entries.length) items.push(el("li", {className: "muted"}, "No files."));
  box.replaceChildren(el("div", {className: "muted"}, "/" + path), el("ul", {className: "files"}, items));
}

async function showFile(r, f, preview, fileUrl) {
  if (f.image) { preview.replaceChildren(el("h3", {}, f.path), el("img", {src: fileUrl(f.path), alt: f.path})); return; }
  if (f.size > 1024 * 1024) { preview.replaceChildren(el("p", {}, `${f.path} is large: download it.`)); return; }
  const resp = await fetch(fileUrl(f.path));
  const text = resp.ok ? await resp.text() : (await resp.json().catch(() => ({error: resp.statusText}))).error;
  preview.replaceChildren(el("h3", {}, f.path), el("pre", {id: "file-text"}, text));
}

function tailOutput(r, pre, my) {
  let offset = 0;
  let busy = false;
  async function more() {
    if (busy || my !== viewToken) return;
    busy = true;
    try {
      const o = await api(`/api/runs/${r.id}/output?offset=${offset}`);
      if (my !== viewToken) return;
      if (o.offset === 0 && offset !== 0) pre.textContent = "";
      const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
      pre.appendChild(document.createTextNode(o.text));
      if (atEnd) pre.scrollTop = pre.scrollHeight;
      offset = o.next;
      if (!o.more && o.status !== "running") clearInterval(timer);
      if (o.next < o.size) setTimeout(more, 0);
      if (!pre.textContent) pre.textContent = "";
    } catch (e) { /* the run may be gone: keep what was shown */ } finally { busy = false; }
  }
  more();
  poll(more, 1000);
}

function writeActions(r) {
  const label = el("input", {type: "text", value: r.label, size: 40, id: "label-input"});
  const tag = el("input", {type: "text", placeholder: "tag", size: 12});
  const msg = el("span", {className: "muted"});
  const act = (fn) => async () => { try { await fn(); route(); } catch (e) { msg.textContent = e.message; } };
  return el("div", {className: "bar"}, label,
    el("button", {onclick: act(() => post(`/api/runs/${r.id}/label`, {label: label.value}))}, "Set label"), tag,
    el("button", {onclick: act(() => post(`/api/runs/${r.id}/tags`, {add: [tag.value]}))}, "Add tag"),
    el("button", {onclick: act(() => post(`/api/runs/${r.id}/tags`, {remove: [tag.value]}))}, "Remove tag"),
    el("button", {className: "danger", onclick: async () => {
      if (!confirm(`Delete run ${r.short_id}? (restorable with 'trk runs restore')`)) return;
      try { await post(`/api/runs/${r.id}/delete`); go("#/"); } catch (e) { msg.textContent = e.message; }
    }}, "Delete"), msg);
}

// -- compare -----------------------------------------------------------------

async function showCompare() {
  const my = viewToken;
  const params = hashParams();
  const cols = el("input", {type: "text", size: 60, value: params.get("columns") || "",
    placeholder: ".operation,.status,=lr,loss,'min loss as best' (as trk compare -cc)",
    onchange: (e) => { params.set("columns", e.target.value); setHashParams("#/compare", params); load(); }});
  const box = el("div", {id: "compare-table"});
  const csv = el("a", {className: "button", id: "compare-csv"}, "Download CSV");
  main.replaceChildren(el("h1", {}, "Compare"), el("div", {className: "bar"}, "Columns", cols, csv), box);
  async function load() {
    const q = new URLSearchParams();
    if (params.get("runs")) q.set("runs", params.get("runs"));
    if (params.get("columns")) q.set("columns", params.get("columns"));
    csv.setAttribute("href", "/api/compare?" + q + "&format=csv");
    let t;
    try { t = await api("/api/compare?" + q); } catch (e) { box.replaceChildren(errorBox(e)); return; }
    if (my !== viewToken) return;
    box.replaceChildren(el("table", {className: "grid"},
      el("tr", {}, t.headers.map((h) => el("th", {}, h))),
      t.rows.map((row, i) => el("tr", {}, row.map((c, j) => el("td", {className: t.kinds[j] === "scalar" ? "num" : ""},
        j === 0 ? runLink(t.ids[i], c) : c))))));
  }
  load();
  poll(load, 5000);
}

// -- scalar plots ------------------------------------------------------------

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

function smooth(values, weight) {
  // TensorBoard's exponential moving average, debiased at the start.
  if (!weight) return values;
  let last = 0, n = 0;
  return values.map((v) => {
    if (v === null || !isFinite(v)) return v;
    last = last * weight + (1 - weight) * v; n++;
    return last / (1 - Math.pow(weight, n));
  });
}

async function showPlots() {
  const my = viewToken;
  const params = hashParams();
  const ids = (params.get("runs") || "").split(",").filter(Boolean);
  const xSel = el("select", {id: "x-axis", onchange: () => { params.set("x", xSel.value); setHashParams("#/plots", params); draw(); }},
    el("option", {value: "step", selected: params.get("x") !== "time"}, "x: step"),
    el("option", {value: "time", selected: params.get("x") === "time"}, "x: time (s)"));
  const sm = el("input", {type: "range", min: 0, max: 0.99, step: 0.01, value: params.get("smooth") || 0, id: "smoothing",
    oninput: () => { smLabel.textContent = sm.value; params.set("smooth", sm.value); setHashParams("#/plots", params); draw(); }});
  const smLabel = el("span", {}, sm.value);
  const charts = el("div", {className: "charts", id: "charts"});
  main.replaceChildren(el("h1", {}, "Scalars"), el("div", {className: "bar"}, xSel, "smoothing", sm, smLabel), charts);
  if (!ids.length) { charts.replaceChildren(el("p", {className: "muted"}, "Select runs in the runs table, then 'Plot selected'.")); return; }
  let runs = [];
  let last = "";
  async function load() {
    try { runs = await Promise.all(ids.map((id) => api("/api/scalars/" + encodeURIComponent(id)))); }
    catch (e) { charts.replaceChildren(errorBox(e)); return; }
    if (my !== viewToken) return;
    const text = JSON.stringify(runs);
    if (text === last) return;
    last = text;
    draw();
    if (!runs.some((r) => r.status === "running")) clearInterval(timer);
  }
  function draw() {
    const keys = [...new Set(runs.flatMap((r) => Object.keys(r.series)))].sort();
    const w = parseFloat(sm.value);
    const useTime = xSel.value === "time";
    charts.replaceChildren();
    if (!keys.length) charts.appendChild(el("p", {className: "muted"}, "These runs have no scalars."));
    for (const key of keys) {
      const having = runs.filter((r) => r.series[key]);
      const tables = having.map((r) => {
        const s = r.series[key];
        const t0 = s.time.length ? s.time[0] : 0;
        return [useTime ? s.time.map((t) => t - t0) : s.step, smooth(s.value, w)];
      });
      const data = uPlot.join(tables);
      const box = el("div", {className: "chart", "data-tag": key, "data-lines": having.length}, el("h3", {}, key));
      charts.appendChild(box);
      const opts = {
        width: Math.max(400, box.clientWidth - 16), height: 260,
        scales: {x: {time: false}},
        axes: [{label: useTime ? "seconds" : "step"}, {}],
        series: [{label: useTime ? "time" : "step"}, ...having.map((r, i) => ({
          label: `${r.short_id} ${r.operation}${r.label ? " " + r.label : ""}`,
          stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: {show: false}}))],
      };
      new uPlot(opts, data, box);
    }
  }
  load();
  poll(load, 5000);
}

// -- routing -----------------------------------------------------------------

function go(hash) { location.hash = hash; }

function route() {
  viewToken++;
  clearInterval(timer);
  const h = location.hash || "#/";
  const path = h.slice(1).split("?")[0];
  for (const a of document.querySelectorAll("[data-nav]")) {
    a.classList.toggle("active", (path === "/" && a.dataset.nav === "runs") || path.startsWith("/" + a.dataset.nav));
  }
  if (path.startsWith("/run/")) return showRun(decodeURIComponent(path.slice(5)));
  if (path === "/compare") return showCompare();
  if (path === "/plots") return showPlots();
  return showRuns();
}

window.addEventListener("hashchange", route);
api("/api/config").then((c) => { config = c; }).catch(() => {}).finally(route);
