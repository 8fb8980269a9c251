// Live updates of one site over server-sent events (GET /api/events?site=S).
//
// EventSource reconnects by itself after a dropped connection; when the server refused the
// stream (401/403, or it was stopped) the EventSource is CLOSED and this class opens a new
// one after a growing pause. Every "open" calls onOpen, so the page re-reads its snapshot
// (/api/fleet, /api/alerts): what changed while the stream was down is not replayed.

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;

export class LiveFeed {
  /**
   * @param {string} site
   * @param {{onOpen: () => void, onPrinter: (p: object) => void, onAlert: (a: object) => void,
   *          onState: (state: "connecting"|"live"|"reconnecting") => void}} handlers
   */
  constructor(site, handlers) {
    this.site = site;
    this.handlers = handlers;
    this.source = null;
    this.timer = null;
    this.retryMs = FIRST_RETRY_MS;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.handlers.onState("connecting");
    const source = new EventSource(`/api/events?site=${encodeURIComponent(this.site)}`);
    this.source = source;
    source.addEventListener("open", () => {
      this.retryMs = FIRST_RETRY_MS;
      this.handlers.onState("live");
      this.handlers.onOpen();
    });
    source.addEventListener("printer", (event) => this.dispatch(event, this.handlers.onPrinter));
    source.addEventListener("alert", (event) => this.dispatch(event, this.handlers.onAlert));
    source.addEventListener("error", () => {
      if (this.stopped || source !== this.source) return;
      this.handlers.onState("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up on this one (an HTTP error, not a dropped connection).
        this.timer = setTimeout(() => this.start(), this.retryMs);
        this.retryMs = Math.min(MAX_RETRY_MS, this.retryMs * 2);
      }
    });
  }

  dispatch(event, handler) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (err) {
      console.error("printfleet: an event that is not JSON", event.type, err);
      return;
    }
    // The server sends only this site's records; checked again so that a stream of the
    // site picked before can never paint into the one shown now.
    if (data && data.site_id === this.site) handler(data);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }
}
