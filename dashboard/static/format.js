// How values read on the page. Times come from the API as milliseconds since the epoch
// (UTC) and are shown in the browser's time zone.

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
});
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** "2026-12-07, 14:05"; "—" for null. */
export function when(ms) {
  return ms === null || ms === undefined ? "—" : dateTime.format(new Date(ms));
}

/** A clock time for today, a date and time otherwise. */
export function clock(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "—";
  const sameDay = new Date(ms).toDateString() === new Date(now).toDateString();
  return sameDay ? timeOnly.format(new Date(ms)) : dateTime.format(new Date(ms));
}

/** "3 h 05 min", "42 s"; "—" for null. */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function ago(ms, now = Date.now()) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** An enum symbol as words: "WARMING_UP" -> "warming up". */
export function words(symbol) {
  return symbol ? String(symbol).toLowerCase().replaceAll("_", " ") : "—";
}

export function number(value, digits = 1) {
  return value === null || value === undefined ? "—" : Number(value).toFixed(digits);
}

/** Progress of the current job, 0..100, or null when the printer reported no layers. */
export function progressPct(printer) {
  const { layers_done: done, layers_total: total } = printer;
  if (done === null || done === undefined || !total) return null;
  return Math.min(100, Math.max(0, (100 * done) / total));
}

export const SEVERITIES = ["INFO", "WARNING", "ERROR", "CRITICAL"];

/** Rank for "at least this serious" filters and sorting; UNKNOWN ranks lowest. */
export function severityRank(severity) {
  return SEVERITIES.indexOf(severity);
}
