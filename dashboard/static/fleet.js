// The fleet view: every printer of the site, one row each, kept current by the live feed.
// An offline printer (the server's `offline`: UNREACHABLE, or silent for too long) is
// greyed with an OFFLINE badge and sorted first, so it is not missed.

import { el, fill } from "./dom.js";
import { ago, clock, duration, progressPct, words } from "./format.js";

const COLUMNS = ["Printer", "Status", "Activity", "Current job", "Completion", "Pending", "Open alerts", "Last seen"];

export const fleetView = {
  async show(app) {
    fill(app.root,
      el("h1", {}, "Fleet ", el("span", { class: "sub" }, app.site)),
      el("div", { class: "summary", id: "fleet-summary", "data-testid": "fleet-summary" }),
      el("table", { class: "fleet", id: "fleet-table", "data-testid": "fleet-table" },
        el("thead", {}, el("tr", {}, COLUMNS.map((c) => el("th", {}, c)))),
        el("tbody", { id: "fleet-rows" })));
    render(app);
  },
  refresh(app) {
    render(app);
  },
  onPrinter(app) {
    render(app);
  },
  onAlert(app) {
    // A printer's open-alert count is the server's (it knows every open alert); read the
    // fleet again, once for a burst of alert changes.
    clearTimeout(this.alertTimer);
    this.alertTimer = setTimeout(async () => {
      await app.loadFleet();
      if (app.view === this) render(app);
    }, 300);
  },
};

function render(app) {
  const body = document.getElementById("fleet-rows");
  if (!body) return;
  const printers = app.printers().sort((a, b) => Number(b.offline) - Number(a.offline));
  fill(body, printers.length
    ? printers.map((p) => row(app, p))
    : el("tr", {}, el("td", { colspan: COLUMNS.length, class: "empty", "data-testid": "fleet-empty" },
      "No printer of this site has reported yet.")));
  summary(app, printers);
}

function summary(app, printers) {
  const count = (test) => printers.filter(test).length;
  const alerts = printers.reduce((n, p) => n + (p.open_alerts || 0), 0);
  fill(document.getElementById("fleet-summary"),
    stat("printers", printers.length, "printers"),
    stat("printing", count((p) => !p.offline && p.activity === "PRINTING"), "printing"),
    stat("offline", count((p) => p.offline), "offline", count((p) => p.offline) > 0 ? "bad" : ""),
    stat("open-alerts", alerts, "open alerts", alerts > 0 ? "warn" : ""));
}

function stat(id, value, label, tone = "") {
  return el("div", { class: `stat ${tone}`, "data-testid": `stat-${id}` },
    el("span", { class: "value" }, String(value)), el("span", { class: "label" }, label));
}

function row(app, p) {
  const pct = progressPct(p);
  const printing = p.current_job_id !== null && p.current_job_id !== "";
  return el("tr", {
    class: p.offline ? "printer offline" : "printer",
    "data-testid": "printer-row", "data-device-id": p.device_id,
    "data-offline": String(Boolean(p.offline)), "data-status": p.status, "data-activity": p.activity,
  },
  el("td", { class: "name" },
    el("a", { href: app.href(`printer/${encodeURIComponent(p.device_id)}`), "data-testid": "printer-link" },
      p.printer_name || p.device_id),
    el("div", { class: "muted" }, p.model_number, p.firmware_release ? ` · fw ${p.firmware_release}` : "")),
  el("td", { "data-testid": "printer-status" },
    p.offline ? el("span", { class: "badge offline-badge", "data-testid": "offline-badge" }, "OFFLINE") : null,
    el("span", { class: `status status-${p.status}` }, words(p.status))),
  el("td", { "data-testid": "printer-activity" }, words(p.activity)),
  el("td", { class: "job" }, printing
    ? [el("div", { class: "muted mono" }, p.current_job_id),
      pct === null ? null : el("div", { class: "progress-line" },
        el("progress", { max: 100, value: pct.toFixed(1), "data-testid": "job-progress" }),
        el("span", {}, `${Math.floor(pct)} % · ${p.layers_done}/${p.layers_total} layers`))]
    : el("span", { class: "muted" }, "no job")),
  el("td", { "data-testid": "printer-eta" }, p.estimated_completion_at
    ? [clock(p.estimated_completion_at), el("div", { class: "muted" }, `in ${duration(p.estimated_remaining_s)}`)]
    : el("span", { class: "muted" }, "—")),
  el("td", { class: "num", "data-testid": "printer-pending" }, String(p.pending_job_count ?? 0)),
  el("td", { class: "num", "data-testid": "printer-alerts" }, p.open_alerts
    ? el("a", { class: "badge alert-count", href: app.href("alerts", { printer: p.device_id }) }, String(p.open_alerts))
    : "0"),
  el("td", { "data-testid": "printer-last-seen", title: clock(p.last_seen) },
    el("span", { "data-ago": p.last_seen }, ago(p.last_seen))));
}
