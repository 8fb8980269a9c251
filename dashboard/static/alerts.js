// The alerts view: open alerts (live) or recent ones (ClickHouse, the last 7 days), with
// filters for severity (at least), rule and printer; each alert says what to do and which
// parts a technician should bring. Filters live in the URL, so a filtered list can be linked.
// Below them, the update advisories the site's printers were given (signed releases).

import * as api from "./api.js";
import { el, fill } from "./dom.js";
import { ago, clock, number, SEVERITIES, severityRank, words } from "./format.js";

export const alertsView = {
  async show(app, { params, generation }) {
    const filters = {
      state: params.get("state") === "recent" ? "recent" : "open",
      severity: params.get("severity") || "",
      rule: params.get("rule") || "",
      printer: params.get("printer") || "",
    };
    this.filters = filters;
    this.alerts = new Map(); // alert_id -> Alert
    this.rules = new Set(filters.rule ? [filters.rule] : []);
    fill(app.root,
      el("h1", {}, "Alerts ", el("span", { class: "sub" }, app.site)),
      el("form", { class: "filters", id: "alert-filters", "data-testid": "alert-filters", onchange: () => applyFilters(app) },
        label("Show", select("alerts-state", [["open", "open"], ["recent", "recent (7 days)"]], filters.state)),
        label("Severity", select("filter-severity", [["", "any"], ...SEVERITIES.map((s) => [s, `${words(s)} or worse`])], filters.severity)),
        label("Rule", select("filter-rule", [["", "any"]], filters.rule)),
        label("Printer", select("filter-printer", [["", "any"], ...app.printers().map((p) => [p.device_id, p.printer_name || p.device_id])], filters.printer))),
      el("div", { id: "alert-list", class: "alert-list", "data-testid": "alert-list" }, el("p", { class: "muted" }, "Loading…")),
      el("h2", {}, "Update advisories"),
      el("div", { id: "advisory-list", "data-testid": "advisory-list" }, el("p", { class: "muted" }, "Loading…")));
    await Promise.all([this.refresh(app, generation), showAdvisories(app, generation, filters.printer)]);
  },

  async refresh(app, generation = app.generation) {
    let answer;
    try {
      answer = await api.alerts(app.site, this.filters);
    } catch (err) {
      if (generation === app.generation) app.showError(err);
      return;
    }
    if (generation !== app.generation || app.view !== this) return;
    this.alerts = new Map(answer.alerts.map((a) => [a.alert_id, a]));
    for (const a of answer.alerts) this.rules.add(a.rule_id);
    render(app, this);
  },

  onAlert(app, alert) {
    this.rules.add(alert.rule_id);
    if (!matches(alert, this.filters)) return;
    if (this.filters.state === "open" && alert.lifecycle === "CLEARED") this.alerts.delete(alert.alert_id);
    else this.alerts.set(alert.alert_id, alert);
    render(app, this);
  },
};

function label(text, control) {
  return el("label", {}, el("span", {}, text), control);
}

function select(id, options, value) {
  const node = el("select", { id, name: id, "data-testid": id }, options.map(([v, t]) => el("option", { value: v }, t)));
  node.value = value;
  return node;
}

function applyFilters(app) {
  const query = new URLSearchParams({ site: app.site });
  const pairs = { state: "alerts-state", severity: "filter-severity", rule: "filter-rule", printer: "filter-printer" };
  for (const [name, id] of Object.entries(pairs)) {
    const value = document.getElementById(id).value;
    if (value) query.set(name, value);
  }
  window.location.hash = `#/alerts?${query}`;
}

/** The server filters the same way (docs/dashboard.md); this keeps live additions honest. */
function matches(alert, filters) {
  if (filters.severity && severityRank(alert.severity) < severityRank(filters.severity)) return false;
  if (filters.rule && alert.rule_id !== filters.rule) return false;
  if (filters.printer && alert.device_id !== filters.printer) return false;
  return true;
}

function render(app, view) {
  const rule = document.getElementById("filter-rule");
  if (rule) {
    const chosen = rule.value;
    fill(rule, el("option", { value: "" }, "any"), [...view.rules].sort().map((r) => el("option", { value: r }, r)));
    rule.value = chosen;
  }
  const list = document.getElementById("alert-list");
  if (!list) return;
  list.dataset.state = view.filters.state;
  const open = view.filters.state === "open";
  const alerts = [...view.alerts.values()].sort(open
    ? (a, b) => severityRank(b.severity) - severityRank(a.severity) || a.raised_at - b.raised_at
    : (a, b) => b.event_time - a.event_time);
  fill(list, alerts.length
    ? alertCards(app, alerts)
    : el("p", { class: "empty", "data-testid": "alerts-empty" }, open ? "No open alert." : "No alert in the last 7 days."));
}

/** Alert cards; also used by the printer page. */
export function alertCards(app, alerts) {
  return alerts.map((a) => el("article", {
    class: `alert sev-border-${a.severity} ${a.lifecycle === "CLEARED" ? "cleared" : ""}`,
    "data-testid": "alert-row", "data-alert-id": a.alert_id, "data-rule": a.rule_id, "data-dedup-key": a.dedup_key,
    "data-severity": a.severity, "data-device-id": a.device_id, "data-lifecycle": a.lifecycle,
  },
  el("header", {},
    el("span", { class: `sev sev-${a.severity}`, "data-testid": "alert-severity" }, a.severity),
    el("strong", { "data-testid": "alert-summary" }, a.summary),
    el("span", { class: "muted" }, " on "),
    el("a", { href: app.href(`printer/${encodeURIComponent(a.device_id)}`) }, app.printerName(a.device_id)),
    el("span", { class: "spacer" }),
    el("span", { class: "muted", title: clock(a.raised_at) }, "raised ", el("span", { "data-ago": a.raised_at }, ago(a.raised_at)))),
  el("dl", {},
    term("Rule", el("code", { "data-testid": "alert-rule" }, a.rule_id)),
    a.subsystem ? term("Subsystem", a.subsystem) : null,
    a.source_event_code ? term("Event code", el("code", {}, a.source_event_code)) : null,
    term("State", a.lifecycle === "CLEARED" ? `cleared ${clock(a.cleared_at)}` : words(a.lifecycle)),
    a.occurrences > 1 ? term("Seen", `${a.occurrences} times`) : null,
    a.predicted_failure_at ? term("Predicted failure", `${clock(a.predicted_failure_at)} (confidence ${number(a.confidence * 100, 0)} %)`) : null,
    a.notify_service ? term("Service", "the service provider is notified") : null),
  el("p", { class: "action", "data-testid": "alert-action" }, el("strong", {}, "What to do: "), a.recommended_action),
  a.recommended_parts.length
    ? el("ul", { class: "parts", "data-testid": "alert-parts" }, a.recommended_parts.map((part) => el("li", {},
      el("code", { "data-testid": "part-number" }, part.part_number), ` × ${part.quantity} — ${part.description}`)))
    : null));
}

async function showAdvisories(app, generation, printer) {
  let answer;
  try {
    answer = await api.advisories(app.site, printer);
  } catch (err) {
    if (generation === app.generation) app.showError(err);
    return;
  }
  const box = document.getElementById("advisory-list");
  if (generation !== app.generation || !box) return;
  fill(box, advisoryTable(app, answer.advisories));
}

/** The update advisories as a table; also used by the printer page. */
export function advisoryTable(app, advisories) {
  if (!advisories.length) return el("p", { class: "empty", "data-testid": "advisories-empty" }, "No update advised.");
  return el("table", { class: "advisories", "data-testid": "advisories" },
    el("thead", {}, el("tr", {}, ["Severity", "Printer", "Update", "Installed", "Released", "Summary"].map((h) => el("th", {}, h)))),
    el("tbody", {}, advisories.map((a) => el("tr", { "data-testid": "advisory-row", "data-advisory-id": a.advisory_id, "data-device-id": a.device_id },
      el("td", {}, el("span", { class: `sev sev-${a.severity}` }, a.severity)),
      el("td", {}, el("a", { href: app.href(`printer/${encodeURIComponent(a.device_id)}`) }, app.printerName(a.device_id))),
      el("td", { "data-testid": "advisory-version" }, `${words(a.advisory_type)} ${a.available_version}`,
        a.material_type ? ` (${a.material_type})` : null),
      el("td", { class: "mono" }, a.installed_version ?? "—"),
      el("td", {}, clock(a.released_at)),
      el("td", {}, a.release_notes_url ? el("a", { href: a.release_notes_url, rel: "noopener noreferrer" }, a.summary) : a.summary)))));
}

function term(name, value) {
  return [el("dt", {}, name), el("dd", {}, value)];
}
