// The utilisation view: hourly or daily buckets of a site or one printer (ClickHouse, via
// GET /api/utilisation), as uPlot charts: time by state, utilisation against the anonymous
// benchmark band of the printers' cohort, jobs and material, packing density.
// Each chart's figure carries data-points (buckets with a value), which the browser tests read.

import uPlot from "./vendor/uplot/uPlot.esm.js";
import * as api from "./api.js";
import { el, fill } from "./dom.js";
import { number } from "./format.js";

const DAY_MS = 86_400_000;
const BUCKET_S = { hour: 3600, day: 86400 };
// Bottom to top of the stacked bars; colours also in style.css's legend.
const STATES = [
  ["printing_s", "printing", "#2e7d32"],
  ["warming_s", "warming", "#f9a825"],
  ["cooling_s", "cooling", "#0277bd"],
  ["idle_s", "idle", "#9e9e9e"],
  ["error_s", "error", "#c62828"],
  ["unreachable_s", "offline", "#424242"],
];

export const utilisationView = {
  async show(app, { params, generation }) {
    const grain = params.get("grain") === "day" ? "day" : "hour";
    const printer = params.get("printer") || "";
    const controls = el("form", { class: "filters", "data-testid": "utilisation-controls", onchange: () => apply(app) },
      el("label", {}, el("span", {}, "Buckets"), select("util-grain", [["hour", "hourly (2 days)"], ["day", "daily (30 days)"]], grain)),
      el("label", {}, el("span", {}, "Printers"), select("util-printer",
        [["", "whole site"], ...app.printers().map((p) => [p.device_id, p.printer_name || p.device_id])], printer)));
    fill(app.root,
      el("h1", {}, "Utilisation ", el("span", { class: "sub" }, printer ? app.printerName(printer) : app.site)),
      controls,
      el("div", { id: "util-totals", class: "summary", "data-testid": "utilisation-totals" }),
      el("div", { id: "charts", class: "charts", "data-testid": "charts" }, el("p", { class: "muted" }, "Loading…")));
    let answer;
    try {
      answer = await api.utilisation(app.site, grain, printer);
    } catch (err) {
      if (generation === app.generation) app.showError(err);
      return;
    }
    if (generation !== app.generation) return;
    render(answer, grain);
  },
};

function select(id, options, value) {
  const node = el("select", { id, name: id, "data-testid": id }, options.map(([v, t]) => el("option", { value: v }, t)));
  node.value = value;
  return node;
}

function apply(app) {
  const query = new URLSearchParams({ site: app.site, grain: document.getElementById("util-grain").value });
  const printer = document.getElementById("util-printer").value;
  if (printer) query.set("printer", printer);
  window.location.hash = `#/utilisation?${query}`;
}

function render(answer, grain) {
  const rows = answer.rows;
  const charts = document.getElementById("charts");
  // What the charts show, for a reader (or a test) that waits for a new choice to land.
  charts.dataset.grain = grain;
  charts.dataset.printer = answer.printer || "";
  totals(rows);
  if (!rows.length) {
    fill(charts, el("p", { class: "empty", "data-testid": "utilisation-empty" },
      "No utilisation yet: the stream worker publishes a printer's hour when it closes."));
    return;
  }
  const bench = benchmarkByDay(answer.benchmark);
  const x = rows.map((r) => r.bucket / 1000);
  const benchOf = (r, key) => {
    const b = bench.get(Math.floor(r.bucket / DAY_MS) * DAY_MS);
    return b ? b[key] : null;
  };
  const hours = STATES.map(([key]) => rows.map((r) => (r[key] || 0) / 3600));
  const figures = [
    figure("chart-state-time", "Time by state (hours)", rows.length,
      (width) => stateChart(width, grain, x, hours)),
    figure("chart-utilisation", bench.size ? "Utilisation % against the anonymous benchmark (p25–p75, median)" : "Utilisation %",
      rows.filter((r) => r.utilisation_pct !== null).length,
      (width) => utilisationChart(width, grain, x, rows.map((r) => r.utilisation_pct),
        bench.size ? ["utilisation_p25_pct", "utilisation_p50_pct", "utilisation_p75_pct"].map((k) => rows.map((r) => benchOf(r, k))) : null)),
    figure("chart-jobs", "Jobs completed and material used", rows.length,
      (width) => jobsChart(width, grain, x, rows.map((r) => r.jobs_completed), rows.map((r) => r.material_consumed_kg))),
    figure("chart-packing", "Packing density and recycled material %",
      rows.filter((r) => r.packing_density_pct !== null || r.material_recycled_pct !== null).length,
      (width) => lineChart(width, grain, x, [
        ["packing density %", rows.map((r) => r.packing_density_pct), "#6a1b9a"],
        ["recycled material %", rows.map((r) => r.material_recycled_pct), "#00897b"],
        ...(bench.size ? [["benchmark median packing %", rows.map((r) => benchOf(r, "packing_density_p50_pct")), "#b39ddb", [6, 4]]] : []),
      ])),
  ];
  fill(charts, figures.map((f) => f.node),
    bench.size ? null : el("p", { class: "muted", "data-testid": "no-benchmark" },
      "No anonymous benchmark for these printers' cohort yet (it needs at least 5 sites)."));
  // uPlot measures its container: draw once the figures are in the page.
  for (const f of figures) f.draw();
}

function figure(testid, title, points, make) {
  const plot = el("div", { class: "plot" });
  const node = el("figure", { class: "chart", "data-testid": testid, "data-points": points },
    el("figcaption", {}, title), plot);
  return { node, draw: () => plot.append(make(Math.max(300, plot.clientWidth)).root) };
}

function totals(rows) {
  const sum = (key) => rows.reduce((n, r) => n + (r[key] || 0), 0);
  const tracked = STATES.reduce((n, [key]) => n + sum(key), 0);
  fill(document.getElementById("util-totals"),
    stat("utilisation", tracked ? `${number((100 * sum("printing_s")) / tracked, 1)} %` : "—", "utilisation"),
    stat("jobs", String(sum("jobs_completed")), "jobs completed"),
    stat("material", `${number(sum("material_consumed_kg"), 1)} kg`, "material used"),
    stat("buckets", String(rows.length), "buckets"));
}

function stat(id, value, label) {
  return el("div", { class: "stat", "data-testid": `util-${id}` },
    el("span", { class: "value" }, value), el("span", { class: "label" }, label));
}

/** The day's benchmark; where the printers belong to several cohorts (models, materials),
 * the mean of their percentiles. */
function benchmarkByDay(rows) {
  const days = new Map();
  for (const b of rows) {
    const day = Math.floor(b.bucket / DAY_MS) * DAY_MS;
    if (!days.has(day)) days.set(day, []);
    days.get(day).push(b);
  }
  const mean = (list, key) => {
    const values = list.map((b) => b[key]).filter((v) => v !== null && v !== undefined);
    return values.length ? values.reduce((a, v) => a + v, 0) / values.length : null;
  };
  const out = new Map();
  for (const [day, list] of days) {
    out.set(day, Object.fromEntries(
      ["utilisation_p25_pct", "utilisation_p50_pct", "utilisation_p75_pct", "packing_density_p50_pct"].map((k) => [k, mean(list, k)])));
  }
  return out;
}

function base(width, grain, series, extra = {}) {
  const half = BUCKET_S[grain] / 2;
  return {
    width, height: 220,
    scales: { x: { time: true, range: (u, min, max) => [min - half, max + half] }, ...(extra.scales || {}) },
    axes: extra.axes || [{}, {}],
    series: [{}, ...series],
    bands: extra.bands,
    legend: { live: true },
  };
}

function stateChart(width, grain, x, hours) {
  // Stacked by hand: series k holds the sum of states 0..k and is drawn before the
  // smaller sums, so each band shows one state; the legend shows the state's own hours.
  const cumulative = [];
  hours.forEach((values, k) => cumulative.push(values.map((v, i) => v + (k ? cumulative[k - 1][i] : 0))));
  const bars = uPlot.paths.bars({ size: [0.8, 40] });
  const order = STATES.map((_, k) => k).reverse();
  const series = order.map((k) => ({
    label: STATES[k][1], fill: STATES[k][2], stroke: STATES[k][2], paths: bars, points: { show: false },
    value: (u, v, si, i) => (i === null || i === undefined ? "—" : `${number(hours[k][i], 2)} h`),
  }));
  return new uPlot(base(width, grain, series, { scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] } } }),
    [x, ...order.map((k) => cumulative[k])]);
}

function utilisationChart(width, grain, x, values, bench) {
  const series = [{ label: "utilisation %", stroke: "#2e7d32", width: 2, points: { show: values.length < 60 } }];
  const data = [x, values];
  let bands;
  if (bench) {
    // Points as well as lines: a benchmark of one day (the demo's, a new cohort's) has
    // no line to draw.
    const points = { show: values.length < 60 };
    series.push(
      { label: "benchmark p25", stroke: "#90caf9", points },
      { label: "benchmark median", stroke: "#1565c0", dash: [6, 4], points },
      { label: "benchmark p75", stroke: "#90caf9", points });
    data.push(...bench);
    bands = [{ series: [4, 2], fill: "rgba(21, 101, 192, 0.12)" }];
  }
  return new uPlot(base(width, grain, series, { bands, scales: { y: { range: [0, 100] } } }), data);
}

function jobsChart(width, grain, x, jobs, kg) {
  return new uPlot(base(width, grain, [
    { label: "jobs", fill: "rgba(46, 125, 50, 0.5)", stroke: "#2e7d32", paths: uPlot.paths.bars({ size: [0.6, 30] }), points: { show: false } },
    { label: "material kg", stroke: "#ef6c00", width: 2, scale: "kg", points: { show: x.length < 60 } },
  ], {
    scales: { y: { range: (u, min, max) => [0, Math.max(1, max)] }, kg: { range: (u, min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { label: "jobs" }, { scale: "kg", side: 1, label: "kg", grid: { show: false } }],
  }), [x, jobs, kg]);
}

function lineChart(width, grain, x, lines) {
  return new uPlot(base(width, grain, lines.map(([label, , colour, dash]) => ({
    label, stroke: colour, width: 2, dash, spanGaps: true, points: { show: x.length < 60 },
  })), { scales: { y: { range: [0, 100] } } }), [x, ...lines.map(([, values]) => values)]);
}
