// The dashboard page: signs in, picks the site, routes between the views and feeds them
// live updates. Routes live in the URL's hash, with the site, so a view can be linked:
//   #/fleet?site=S   #/utilisation?site=S&printer=D   #/alerts?site=S   #/printer/D?site=S
// Plain ES modules served as files: no framework, no build step.

import * as api from "./api.js";
import { el, fill } from "./dom.js";
import { ago } from "./format.js";
import { LiveFeed } from "./live.js";
import { fleetView } from "./fleet.js";
import { alertsView } from "./alerts.js";
import { utilisationView } from "./utilisation.js";
import { printerView } from "./printer.js";

const VIEWS = { fleet: fleetView, alerts: alertsView, utilisation: utilisationView, printer: printerView };
const $ = (id) => document.getElementById(id);

/** What every view is handed: the user, the site, its printers, and the view's own root. */
class App {
  constructor(me) {
    this.me = me;
    this.site = null;
    this.fleet = new Map(); // device_id -> Printer (docs/dashboard.md), the site's newest states
    this.fleetError = null; // the ApiError that /api/fleet answered for this site, if any
    this.view = null;
    this.generation = 0; // bumped on every route: an answer for an older route is dropped
    this.root = $("view");
    this.feed = null;
  }

  /** A link to `view` of the current site; `extra` adds query parameters. */
  href(view, extra = {}) {
    const query = new URLSearchParams({ site: this.site, ...extra });
    return `#/${view}?${query}`;
  }

  printerName(deviceId) {
    const printer = this.fleet.get(deviceId);
    return printer ? printer.printer_name || deviceId : deviceId;
  }

  /** The site's printers in the order the fleet API gives them (name, then id). */
  printers() {
    return [...this.fleet.values()].sort(
      (a, b) => a.printer_name.localeCompare(b.printer_name) || a.device_id.localeCompare(b.device_id),
    );
  }

  async loadFleet() {
    const site = this.site;
    try {
      const answer = await api.fleet(site);
      if (site !== this.site) return;
      this.fleet = new Map(answer.printers.map((p) => [p.device_id, p]));
      this.fleetError = null;
    } catch (err) {
      if (site !== this.site) return;
      this.fleet = new Map();
      this.fleetError = err;
    }
  }

  showError(err) {
    if (err.status === 401) {
      // The session ended (signed out elsewhere, or the user was removed): sign in again.
      window.location.assign("/");
      return;
    }
    fill(this.root, el("div", { class: "view-error", "data-testid": "view-error", "data-status": err.status ?? "" },
      el("strong", {}, err.status ? `${err.status}: ` : "Error: "), err.message));
  }
}

async function boot() {
  const params = new URLSearchParams(window.location.search);
  let me;
  try {
    me = await api.me();
  } catch (err) {
    if (err.status === 401) return showLogin(params.get("login") === "failed");
    fill($("view"), el("div", { class: "view-error", "data-testid": "view-error" }, err.message));
    return;
  }
  if (params.has("login")) history.replaceState(null, "", window.location.pathname + window.location.hash);
  const app = new App(me);
  showChrome(app);
  window.addEventListener("hashchange", () => route(app));
  setInterval(tickAgo, 1000);
  await route(app);
}

function showLogin(failed) {
  $("login-view").hidden = false;
  $("login-error").hidden = !failed;
  $("login-token").focus();
}

function showChrome(app) {
  $("nav").hidden = false;
  $("logout-form").hidden = false;
  const user = $("user");
  user.hidden = false;
  fill(user, app.me.name, app.me.operator ? el("span", { class: "tag" }, "operator") : null);
  const picker = $("site-picker");
  fill(picker, app.me.sites.map((s) => el("option", { value: s }, s)));
  // One site: its name; several (or an operator): a picker.
  const choose = app.me.operator || app.me.sites.length > 1;
  $("site-picker-label").hidden = !choose;
  $("site-name").hidden = choose;
  picker.addEventListener("change", () => {
    const { view } = parseHash();
    window.location.hash = `#/${view === "printer" ? "fleet" : view}?site=${encodeURIComponent(picker.value)}`;
  });
}

function parseHash() {
  const hash = window.location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?", 2);
  const [view, ...rest] = path.split("/");
  return {
    view: VIEWS[view] ? view : "fleet",
    arg: rest.length ? decodeURIComponent(rest.join("/")) : null,
    params: new URLSearchParams(query),
  };
}

async function route(app) {
  const { view, arg, params } = parseHash();
  const site = params.get("site") || app.site || app.me.sites[0] || null;
  const generation = ++app.generation;
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.view === view || (view === "printer" && link.dataset.view === "fleet"));
    link.setAttribute("href", site ? `#/${link.dataset.view}?site=${encodeURIComponent(site)}` : `#/${link.dataset.view}`);
  }
  if (!site) {
    fill(app.root, el("p", { class: "empty", "data-testid": "no-sites" },
      "No site has sent data yet: the list of sites fills as the fleet state arrives."));
    return;
  }
  if (!params.get("site")) {
    params.set("site", site);
    history.replaceState(null, "", `#/${view}${arg ? "/" + encodeURIComponent(arg) : ""}?${params}`);
  }
  $("site-picker").value = site;
  fill($("site-name"), site);
  if (site !== app.site) await switchSite(app, site);
  if (generation !== app.generation) return;
  app.view = VIEWS[view];
  if (app.fleetError) {
    app.showError(app.fleetError);
    return;
  }
  await app.view.show(app, { arg, params, generation });
}

async function switchSite(app, site) {
  if (app.feed) app.feed.stop();
  app.site = site;
  app.fleet = new Map();
  await app.loadFleet();
  if (app.fleetError) {
    setLive("off");
    app.feed = null;
    return;
  }
  app.feed = new LiveFeed(site, {
    onState: setLive,
    onOpen: async () => {
      const badge = $("live-status");
      badge.dataset.opens = String(Number(badge.dataset.opens || 0) + 1);
      // Whatever changed while the stream was down: read the snapshot again.
      await app.loadFleet();
      if (app.view && app.view.refresh) app.view.refresh(app);
    },
    onPrinter: (printer) => {
      app.fleet.set(printer.device_id, printer);
      if (app.view && app.view.onPrinter) app.view.onPrinter(app, printer);
    },
    onAlert: (alert) => {
      if (alert.lifecycle === "RAISED") toast(app, alert);
      if (app.view && app.view.onAlert) app.view.onAlert(app, alert);
    },
  });
  app.feed.start();
}

function setLive(state) {
  const badge = $("live-status");
  badge.hidden = false;
  badge.dataset.state = state;
  badge.textContent = { live: "live", connecting: "connecting…", reconnecting: "reconnecting…", off: "not live" }[state];
}

let toastTimer = null;
function toast(app, alert) {
  const box = $("toast");
  fill(box,
    el("span", { class: `sev sev-${alert.severity}` }, alert.severity),
    " New alert on ",
    el("a", { href: app.href(`printer/${encodeURIComponent(alert.device_id)}`) }, app.printerName(alert.device_id)),
    ": ", alert.summary,
    " ", el("a", { href: app.href("alerts") }, "all alerts"));
  box.dataset.alertId = alert.alert_id;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 15000);
}

/** Keep every "… ago" on the page current. */
function tickAgo() {
  const now = Date.now();
  for (const node of document.querySelectorAll("[data-ago]")) node.textContent = ago(Number(node.dataset.ago), now);
}

boot();
