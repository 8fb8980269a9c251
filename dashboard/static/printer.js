// The page of one printer: its state, its consumables with their remaining life and the
// stream worker's predicted end of life, its open alerts and the updates it was advised
// (GET /api/printers/<id>).

import * as api from "./api.js";
import { advisoryTable, alertCards } from "./alerts.js";
import { el, fill } from "./dom.js";
import { ago, clock, duration, number, progressPct, words } from "./format.js";

export const printerView = {
  async show(app, { arg, generation }) {
    this.deviceId = arg;
    fill(app.root, el("p", { class: "muted" }, "Loading…"));
    await this.refresh(app, generation);
  },

  async refresh(app, generation = app.generation) {
    let answer;
    try {
      answer = await api.printer(app.site, this.deviceId);
    } catch (err) {
      if (generation === app.generation) app.showError(err);
      return;
    }
    if (generation !== app.generation || app.view !== this) return;
    render(app, answer);
  },

  onPrinter(app, printer) {
    if (printer.device_id !== this.deviceId) return;
    const box = document.getElementById("printer-state");
    if (box) fill(box, stateFacts(printer));
    const title = document.getElementById("printer-title");
    if (title) title.classList.toggle("offline", Boolean(printer.offline));
  },

  onAlert(app, alert) {
    // The alert may change a consumable's predicted end of life too: read the page again.
    if (alert.device_id === this.deviceId) this.refresh(app);
  },
};

function render(app, { printer, consumables, alerts, advisories }) {
  fill(app.root,
    el("p", {}, el("a", { href: app.href("fleet") }, "← fleet")),
    el("h1", { id: "printer-title", class: printer.offline ? "offline" : "", "data-testid": "printer-title", "data-device-id": printer.device_id },
      printer.printer_name || printer.device_id, " ",
      el("span", { class: "sub" }, `${printer.model_number} · ${printer.device_id}`)),
    el("dl", { id: "printer-state", class: "facts", "data-testid": "printer-state" }, stateFacts(printer)),
    el("p", {}, el("a", { href: app.href("utilisation", { printer: printer.device_id }), "data-testid": "printer-utilisation-link" },
      "Utilisation of this printer")),
    el("h2", {}, "Consumables"),
    consumables.length
      ? el("table", { class: "consumables", "data-testid": "consumables" },
        el("thead", {}, el("tr", {}, ["Item", "Part number", "Serial", "Status", "Remaining life", "Predicted end of life", "Reported"].map((h) => el("th", {}, h)))),
        el("tbody", {}, consumables.map(consumableRow)))
      : el("p", { class: "empty", "data-testid": "consumables-empty" }, "No consumable reported yet."),
    el("h2", {}, "Open alerts"),
    alerts.length
      ? el("div", { class: "alert-list", "data-testid": "printer-alerts" }, alertCards(app, alerts))
      : el("p", { class: "empty", "data-testid": "printer-alerts-empty" }, "No open alert."),
    el("h2", {}, "Update advisories"),
    advisoryTable(app, advisories));
}

function stateFacts(p) {
  const pct = progressPct(p);
  const fact = (name, ...value) => [el("dt", {}, name), el("dd", {}, ...value)];
  return [
    fact("Status", p.offline ? el("span", { class: "badge offline-badge", "data-testid": "offline-badge" }, "OFFLINE") : null, words(p.status)),
    fact("Activity", words(p.activity)),
    fact("Current job", p.current_job_id
      ? [el("code", {}, p.current_job_id), pct === null ? "" : ` · ${Math.floor(pct)} % (${p.layers_done}/${p.layers_total} layers)`]
      : "none"),
    fact("Completion", p.estimated_completion_at ? `${clock(p.estimated_completion_at)} (in ${duration(p.estimated_remaining_s)})` : "—"),
    fact("Pending jobs", String(p.pending_job_count ?? 0)),
    fact("Firmware", p.firmware_release || "—"),
    fact("Last seen", el("span", { "data-ago": p.last_seen }, ago(p.last_seen))),
  ];
}

function consumableRow(c) {
  const remaining = c.remaining_pct;
  const tone = remaining === null ? "" : remaining < 10 ? "bad" : remaining < 25 ? "warn" : "ok";
  return el("tr", { "data-testid": "consumable-row", "data-item": c.item, "data-kind": c.kind },
    el("td", {}, c.description, el("div", { class: "muted mono" }, c.item)),
    el("td", { class: "mono" }, c.part_number ?? "—"),
    el("td", { class: "mono" }, c.serial_number ?? "—"),
    el("td", {}, words(c.status)),
    el("td", { "data-testid": "consumable-remaining" }, remaining === null ? "—" : el("div", { class: `life ${tone}` },
      el("meter", { min: 0, max: 100, low: 10, high: 25, optimum: 100, value: remaining }),
      el("span", {}, `${number(remaining, 0)} %`))),
    el("td", { "data-testid": "consumable-eol" }, c.predicted_end_of_life_at
      ? [clock(c.predicted_end_of_life_at),
        c.prediction_confidence === null ? null : el("div", { class: "muted" }, `confidence ${number(c.prediction_confidence * 100, 0)} %`)]
      : el("span", { class: "muted" }, "no prediction")),
    el("td", { class: "muted" }, el("span", { "data-ago": c.reported_at }, ago(c.reported_at))));
}
