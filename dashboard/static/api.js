// The dashboard's JSON API (docs/dashboard.md). The browser sends the session cookie that
// POST /login set; every answer that is not 2xx becomes an ApiError with the status and the
// server's {"error": ...} text, so a view can say what went wrong.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** GET `path` with the query `params` (empty and null values left out) and parse the JSON. */
export async function getJSON(path, params = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") url.searchParams.set(name, value);
  }
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  } catch (err) {
    throw new ApiError(0, `the dashboard server does not answer (${err.message})`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null; // an error page that is not JSON: the status says enough
  }
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.error) || response.statusText || `HTTP ${response.status}`);
  }
  return body;
}

export const me = () => getJSON("/api/me");
export const fleet = (site) => getJSON("/api/fleet", { site });
export const alerts = (site, filters) => getJSON("/api/alerts", { site, ...filters });
export const utilisation = (site, grain, printer) => getJSON("/api/utilisation", { site, grain, printer });
export const printer = (site, deviceId) => getJSON(`/api/printers/${encodeURIComponent(deviceId)}`, { site });
export const advisories = (site, printer) => getJSON("/api/advisories", { site, printer });
