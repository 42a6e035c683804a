// dxtrack's dashboard and report: draws one snapshot of the records (see dashboard/snapshot.py).
// The report embeds its snapshot; the dashboard fetches it and listens for changes. Every text
// from a record goes through textContent, never innerHTML.
"use strict";

const COLORS = ["#3454d1", "#d1343e", "#1f8a4c", "#b7791f", "#7b3fd1", "#0f8fa3", "#c2417f"];
const OTHER = "#a7aec0";
const SVG = "http://www.w3.org/2000/svg";
const open = new Set();   // the fingerprints whose group is expanded
let current = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else if (key === "cls") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text != null) node.textContent = text;
  return node;
}

function when(seconds, withDate = true) {
  if (seconds == null) return "";
  const iso = new Date(seconds * 1000).toISOString();
  return withDate ? iso.slice(0, 19).replace("T", " ") : iso.slice(11, 19);
}

function bucketLabel(seconds, every) {
  const iso = new Date(seconds * 1000).toISOString();
  if (every >= 86400) return iso.slice(5, 10);
  if (every >= 3600) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  if (every >= 60) return iso.slice(11, 16);
  return iso.slice(11, 19);
}

function num(value) {
  if (value == null) return "";
  if (Number.isInteger(value)) return value.toLocaleString("en-US");
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 0.001 || abs >= 1e7)) return value.toExponential(3);
  return Number(value.toPrecision(5)).toLocaleString("en-US", { maximumFractionDigits: 4 });
}

function clear(id) {
  const node = document.getElementById(id);
  node.replaceChildren();
  return node;
}

function pill(label, value, kind) {
  return el("span", { cls: "pill" + (kind ? " " + kind : "") }, el("b", { text: num(value) }), label);
}

function renderHeader(data) {
  document.getElementById("source").textContent = data.source;
  clear("pills").append(
    pill("errors", data.occurrences),
    pill("groups", data.group_count),
    pill("metric records", data.counts.metrics),
    pill("runs", data.runs.length),
    pill("lost", data.lost, data.lost ? "bad" : "good"),
  );
  document.title = `dxtrack: ${data.occurrences} errors, ${data.counts.metrics} metrics`;
}

// ---- errors -------------------------------------------------------------------------------

function colorOf(fingerprints) {
  const colors = new Map();
  fingerprints.forEach((fp, i) => colors.set(fp, COLORS[i]));
  return (fp) => colors.get(fp) || OTHER;
}

function renderErrorsChart(data) {
  document.getElementById("errors-chart-title").textContent =
    `Errors ${data.errors_every_name}, by fingerprint`;
  const box = clear("errors-chart");
  const rows = data.errors_timeline;
  if (!rows.length) { box.append(el("div", { cls: "empty", text: "No errors recorded." })); return; }
  const top = data.groups.slice(0, COLORS.length).map((g) => g.fingerprint);
  const color = colorOf(top);
  const buckets = new Map();
  for (const row of rows) {
    if (!buckets.has(row.bucket)) buckets.set(row.bucket, []);
    buckets.get(row.bucket).push(row);
  }
  const keys = [...buckets.keys()].sort((a, b) => a - b);
  const totals = keys.map((k) => buckets.get(k).reduce((s, r) => s + r.errors, 0));
  const max = Math.max(...totals, 1);
  const W = 1000, H = 220, L = 46, B = 24, T = 8;
  const step = (W - L) / Math.max(keys.length, 1);
  const bar = Math.max(Math.min(step * 0.72, 60), 2);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  for (const f of [0, 0.5, 1]) {
    const y = T + (H - B - T) * (1 - f);
    chart.append(svg("line", { x1: L, x2: W, y1: y, y2: y, stroke: "#e3e6ec" }));
    chart.append(svg("text", { x: L - 6, y: y + 4, "text-anchor": "end" }, num(Math.round(max * f))));
  }
  keys.forEach((key, i) => {
    let y = H - B;
    const x = L + i * step + (step - bar) / 2;
    const parts = buckets.get(key).slice().sort((a, b) => top.indexOf(b.fingerprint) - top.indexOf(a.fingerprint));
    for (const row of parts) {
      const h = ((H - B - T) * row.errors) / max;
      y -= h;
      const rect = svg("rect", { x, y, width: bar, height: Math.max(h, 0.5), fill: color(row.fingerprint), rx: 1.5 });
      rect.append(svg("title", {}, `${bucketLabel(key, data.errors_every)}  ${row.fingerprint}: ${row.errors}`));
      chart.append(rect);
    }
    const every = Math.ceil(keys.length / (data.errors_every >= 3600 && data.errors_every < 86400 ? 8 : 12));
    if (i % every === 0) {
      chart.append(svg("text", { x: x + bar / 2, y: H - 6, "text-anchor": "middle" }, bucketLabel(key, data.errors_every)));
    }
  });
  const legend = el("div", { cls: "legend" });
  for (const group of data.groups.slice(0, COLORS.length)) {
    legend.append(el("span", {}, el("i", { style: `background:${color(group.fingerprint)}` }),
      `${group.type}: ${(group.message || "").slice(0, 40)}`));
  }
  if (data.group_count > COLORS.length) legend.append(el("span", {}, el("i", { style: `background:${OTHER}` }), "other"));
  box.append(chart, legend);
}

function tracebackView(text) {
  const pre = el("pre", { cls: "tb" });
  if (!text) { pre.textContent = "(no traceback)"; return pre; }
  const lines = text.replace(/\n$/, "").split("\n");
  lines.forEach((line, i) => {
    const cls = i === lines.length - 1 ? "last" : /^\s+File "/.test(line) ? "file" : null;
    pre.append(cls ? el("span", { cls, text: line }) : line, i < lines.length - 1 ? "\n" : "");
  });
  return pre;
}

async function loadOccurrences(fingerprint, box) {
  if (window.DXTRACK_SNAPSHOT) return;  // the report has no server to ask
  try {
    const response = await fetch(`/api/errors/${encodeURIComponent(fingerprint)}`);
    const rows = await response.json();
    const table = el("table", { cls: "data" });
    table.append(el("tr", {}, ...["time", "context", "run", "message", "metadata"].map((h) => el("th", { text: h }))));
    for (const row of rows) {
      table.append(el("tr", {},
        el("td", { text: when(row.timestamp) }), el("td", { text: row.context }),
        el("td", {}, el("code", { cls: "fp", text: (row.run_id || "").slice(0, 12) })),
        el("td", { text: row.message }), el("td", { text: JSON.stringify(row.metadata) })));
    }
    box.replaceChildren(el("h2", { text: `Latest ${rows.length} occurrences` }), table);
  } catch (error) {
    box.textContent = "";
  }
}

function renderGroups(data) {
  document.getElementById("groups-title").textContent =
    `Errors by fingerprint: ${data.group_count} groups, ${num(data.occurrences)} occurrences`;
  const box = clear("groups");
  if (!data.groups.length) { box.append(el("div", { cls: "empty", text: "No errors recorded." })); return; }
  for (const group of data.groups) {
    const item = el("div", { cls: "group", "data-fingerprint": group.fingerprint });
    const head = el("div", { cls: "group-head" },
      el("div", { cls: "count", text: num(group.occurrences) }),
      el("div", {},
        el("div", {}, el("span", { cls: "etype", text: group.type }), ": ",
          el("span", { cls: "emsg", text: group.message || "" }),
          group.unhandled ? el("span", { cls: "tag", text: "unhandled" }) : null),
        el("div", { cls: "meta" }, el("code", { text: group.fingerprint }),
          ` ${group.mechanism} · ${(group.contexts || []).join(", ")} · ${group.runs} run${group.runs === 1 ? "" : "s"}`)),
      el("div", { cls: "when" }, el("b", { text: when(group.first_seen) }), "first seen"),
      el("div", { cls: "when" }, el("b", { text: when(group.last_seen) }), "last seen"));
    const body = el("div", { cls: "group-body" });
    const show = () => {
      body.replaceChildren(tracebackView(group.traceback));
      const more = el("div", { cls: "occurrences" });
      body.append(more);
      loadOccurrences(group.fingerprint, more);
    };
    head.addEventListener("click", () => {
      if (open.has(group.fingerprint)) { open.delete(group.fingerprint); body.replaceChildren(); }
      else { open.add(group.fingerprint); show(); }
    });
    if (open.has(group.fingerprint)) show();
    item.append(head, body);
    box.append(item);
  }
  if (data.group_count > data.groups.length) {
    box.append(el("div", { cls: "hint", text: `… and ${data.group_count - data.groups.length} more groups (dxtrack errors --json lists all)` }));
  }
}

// ---- metrics ------------------------------------------------------------------------------

function lineChart(points, every) {
  const W = 420, H = 130, L = 44, B = 20, T = 6;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  if (!points.length) return chart;
  const xs = points.map((p) => p.bucket);
  const lo = Math.min(...points.map((p) => p.p50), 0 <= Math.min(...points.map((p) => p.p50)) ? 0 : Infinity);
  const hi = Math.max(...points.map((p) => p.p95), lo + 1e-9);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + every);
  const x = (v) => L + ((W - L - 6) * (v - x0)) / (x1 - x0 || 1);
  const y = (v) => T + (H - B - T) * (1 - (v - lo) / (hi - lo || 1));
  for (const f of [0, 0.5, 1]) {
    const v = lo + (hi - lo) * f;
    chart.append(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v), stroke: "#e3e6ec" }));
    chart.append(svg("text", { x: L - 5, y: y(v) + 4, "text-anchor": "end" }, num(v)));
  }
  const path = (key) => points.map((p, i) => `${i ? "L" : "M"}${x(p.bucket).toFixed(1)},${y(p[key]).toFixed(1)}`).join("");
  chart.append(svg("path", { d: path("p95"), fill: "none", stroke: "#d1343e", "stroke-width": 1.6, "stroke-dasharray": "4 3" }));
  chart.append(svg("path", { d: path("p50"), fill: "none", stroke: "#3454d1", "stroke-width": 2 }));
  if (points.length === 1) {
    chart.append(svg("circle", { cx: x(points[0].bucket), cy: y(points[0].p50), r: 3, fill: "#3454d1" }));
  }
  chart.append(svg("text", { x: L, y: H - 4 }, bucketLabel(x0, every)));
  chart.append(svg("text", { x: W - 4, y: H - 4, "text-anchor": "end" }, bucketLabel(Math.max(...xs), every)));
  return chart;
}

function renderMetrics(data) {
  document.getElementById("metrics-title").textContent =
    `Metrics: ${data.metrics.length} names, p50 and p95 ${data.metrics_every_name}`;
  const box = clear("metric-cards");
  if (!data.metrics.length) { box.append(el("div", { cls: "card empty", text: "No metrics recorded." })); return; }
  const series = new Map();
  for (const point of data.metric_series) {
    if (!series.has(point.metric_name)) series.set(point.metric_name, []);
    series.get(point.metric_name).push(point);
  }
  for (const metric of data.metrics) {
    const stats = el("div", { cls: "stats" });
    for (const key of ["records", "min", "p50", "p95", "max", "last"]) {
      stats.append(el("span", {}, `${key === "records" ? "count" : key} `, el("b", { text: num(metric[key]) })));
    }
    const legend = el("div", { cls: "legend" },
      el("span", {}, el("i", { style: "background:#3454d1" }), "p50"),
      el("span", {}, el("i", { style: "background:#d1343e" }), "p95"));
    box.append(el("div", { cls: "card metric", "data-metric": metric.metric_name },
      el("h3", { text: metric.metric_name }), stats,
      el("div", { cls: "mchart" }, lineChart(series.get(metric.metric_name) || [], data.metrics_every)), legend));
  }
}

// ---- runs and gaps ------------------------------------------------------------------------

function table(columns, rows) {
  const t = el("table", { cls: "data" });
  t.append(el("tr", {}, ...columns.map(([label, , cls]) => el("th", { text: label, cls: cls || "" }))));
  for (const row of rows) {
    t.append(el("tr", {}, ...columns.map(([, cell, cls]) => {
      const value = cell(row);
      return el("td", { cls: (typeof cls === "function" ? cls(row) : cls) || "" }, value instanceof Node ? value : String(value ?? ""));
    })));
  }
  return t;
}

function renderRuns(data) {
  document.getElementById("runs-title").textContent = `Runs: ${data.runs.length}`;
  const box = clear("runs-table");
  if (!data.runs.length) { box.append(el("div", { cls: "empty", text: "No runs." })); return; }
  box.append(table([
    ["run id", (r) => el("code", { cls: "fp", text: r.run_id })],
    ["contexts", (r) => (r.contexts || []).join(", ")],
    ["started", (r) => when(r.started)], ["ended", (r) => when(r.ended)],
    ["errors", (r) => num(r.errors), "num"], ["metrics", (r) => num(r.metrics), "num"],
    ["producers", (r) => r.producers, "num"],
    ["lost", (r) => num(r.lost), (r) => "num " + (r.lost ? "bad" : "good")],
  ], data.runs));
}

function renderGaps(data) {
  document.getElementById("gaps-title").textContent =
    data.lost ? `Gaps in seq: ${num(data.lost)} records lost` : "Gaps in seq";
  const box = clear("gaps-table");
  if (!data.gaps.length) {
    box.append(el("div", { cls: "ok-note", text: "No gaps: every producer's records arrived without a hole." }));
    return;
  }
  box.append(table([
    ["context", (g) => g.context], ["run id", (g) => el("code", { cls: "fp", text: g.run_id })],
    ["host", (g) => g.host], ["producer", (g) => el("code", { cls: "fp", text: g.producer_id })],
    ["first missing", (g) => g.first_missing, "num"], ["last missing", (g) => g.last_missing, "num"],
    ["missing", (g) => num(g.missing), "num bad"],
  ], data.gaps));
}

function render(data) {
  current = data;
  renderHeader(data);
  renderErrorsChart(data);
  renderGroups(data);
  renderMetrics(data);
  renderRuns(data);
  renderGaps(data);
  document.getElementById("footer").textContent =
    `${num(data.counts.errors)} error records and ${num(data.counts.metrics)} metric records · queried in ${data.seconds} s · ${when(data.generated_at)} UTC`;
  document.body.dataset.generatedAt = String(data.generated_at);
}

// ---- live ---------------------------------------------------------------------------------

function setLive(on, text) {
  const live = document.getElementById("live");
  live.classList.toggle("on", on);
  document.getElementById("updated").textContent = text;
}

async function refresh() {
  const response = await fetch("/api/snapshot", { cache: "no-store" });
  render(await response.json());
  const live = document.getElementById("live");
  live.classList.add("flash");
  setTimeout(() => live.classList.remove("flash"), 400);
  setLive(true, `live · updated ${when(current.generated_at, false)} UTC`);
}

function start() {
  const embedded = document.getElementById("dxtrack-snapshot");
  if (embedded) {
    window.DXTRACK_SNAPSHOT = JSON.parse(embedded.textContent);
    render(window.DXTRACK_SNAPSHOT);
    setLive(false, `report of ${when(current.generated_at)} UTC`);
    return;
  }
  refresh().catch(() => setLive(false, "cannot reach the dxtrack ui server"));
  const events = new EventSource("/api/events");
  events.addEventListener("snapshot", () => refresh().catch(() => {}));
  events.onerror = () => setLive(false, "reconnecting…");
  events.onopen = () => current && setLive(true, `live · updated ${when(current.generated_at, false)} UTC`);
}

start();
