// Conveyor dashboard: hash-routed views over the JSON API, refreshed when the server's event
// stream says something changed (server-sent events), with polling as the fallback.
import "./style.css";
import { api, ApiError, type Config, DOCUMENTED_RANGES, type Range } from "./api";
import { h, plain, replace } from "./dom";
import { loginView } from "./views/login";
import { overviewView } from "./views/overview";
import { queueView } from "./views/queue";
import { jobView } from "./views/job";
import { workersView } from "./views/workers";
import { schedulesView } from "./views/schedules";
import { groupsView } from "./views/groups";
import type { App, View } from "./views/common";

/** One part of the location hash; a malformed escape (a hand-edited link) is kept as typed
 * rather than throwing and leaving the page blank. */
function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

const POLL_KEY = "conveyor.poll";
/** While the event stream is open, a poll still runs this seldom: a safety net, not the driver. */
const STREAMING_POLL_SECONDS = 30;
/** Refreshes driven by events come at most this often (a burst is one refresh). */
const EVENT_REFRESH_MS = 500;
const THEME_KEY = "conveyor.theme";

class Dashboard implements App {
  config: Config | null = null;
  private main = h("main", { id: "main" });
  private banner = h("div", { class: "banner", role: "status", hidden: true });
  private live = h("span", { class: "live", title: "live updates", "data-testid": "live" });
  private view: View | null = null;
  private timer: number | undefined;
  private poll = h("select", { "aria-label": "refresh interval", "data-testid": "poll" });
  /** Seconds between refreshes (0: paused); set from the served choices once config is in. */
  private pollSeconds = 0;
  private busy = false;
  /** A refresh was asked for while one was in flight. */
  private again = false;
  /** The open event stream (null: none, e.g. paused, hidden, or the server offers none). */
  private source: EventSource | null = null;
  private streaming = false;
  private lastRefresh = 0;
  private eventTimer: number | undefined;

  start(): void {
    // A choice made here wins; until then the system's light/dark preference, followed live.
    const prefersLight = window.matchMedia("(prefers-color-scheme: light)");
    this.applyTheme(localStorage.getItem(THEME_KEY) ?? (prefersLight.matches ? "light" : "dark"));
    prefersLight.addEventListener("change", (ev) => {
      if (localStorage.getItem(THEME_KEY)) return;
      this.applyTheme(ev.matches ? "light" : "dark");
      this.view?.restyle?.();
    });
    const root = document.getElementById("app")!;
    replace(root, this.header(), this.banner, this.main,
      h("footer", {}, "Conveyor · ", h("a", { href: "api/openapi.json" }, "OpenAPI"), " · ",
        h("a", { href: "metrics" }, "Prometheus metrics")));
    window.addEventListener("hashchange", () => void this.route());
    document.addEventListener("visibilitychange", () => { this.follow(); this.schedule(); });
    void this.boot();
  }

  private async boot(): Promise<void> {
    try {
      this.config = await api.config();
    } catch (err) {
      this.showError(err);
    }
    this.offerPollChoices(this.config?.poll_seconds ?? []);
    await this.route();
  }

  /** The served refresh intervals (the first is the default) and "paused"; a stored choice
   * is kept while the server still offers it. */
  private offerPollChoices(choices: number[]): void {
    const stored = Number(localStorage.getItem(POLL_KEY) ?? "NaN");
    this.pollSeconds = stored === 0 || choices.includes(stored) ? stored : choices[0] ?? 0;
    replace(this.poll, ...[0, ...choices].map((s) =>
      h("option", { value: s, selected: s === this.pollSeconds }, s ? `every ${s} s` : "paused")));
  }

  private header(): HTMLElement {
    const poll = this.poll;
    poll.addEventListener("change", () => {
      this.pollSeconds = Number(poll.value);
      localStorage.setItem(POLL_KEY, poll.value);
      this.follow();
      this.schedule();
    });
    const theme = h("button", { class: "ghost", title: "toggle dark / light", "aria-label": "toggle theme" }, "◐");
    theme.addEventListener("click", () => {
      const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
      localStorage.setItem(THEME_KEY, next);
      this.applyTheme(next);
      this.view?.restyle?.();
    });
    return h("header", { class: "top" },
      h("a", { class: "brand", href: "#/" }, h("span", { class: "logo" }, "▸▸"), "Conveyor"),
      h("nav", {}, h("a", { href: "#/" }, "Overview"), h("a", { href: "#/workers" }, "Workers")),
      h("div", { class: "spacer" }),
      this.live, poll, theme);
  }

  private applyTheme(theme: string): void {
    document.documentElement.dataset.theme = theme === "light" ? "light" : "dark";
  }

  async route(): Promise<void> {
    window.clearTimeout(this.timer);
    this.view?.destroy?.();
    const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodePart);
    let view: View;
    if (parts[0] === "queues" && parts[1] && parts[2] === "jobs" && parts[3]) {
      view = jobView(this, parts[1], parts[3]);
    } else if (parts[0] === "queues" && parts[1] && parts[2] === "groups") {
      view = groupsView(this, parts[1]);
    } else if (parts[0] === "queues" && parts[1] && parts[2] === "schedules") {
      view = schedulesView(this, parts[1]);
    } else if (parts[0] === "queues" && parts[1]) {
      view = queueView(this, parts[1], parts[2] || "waiting");
    } else if (parts[0] === "workers") {
      view = workersView(this);
    } else {
      view = overviewView(this);
    }
    this.view = view;
    this.follow();
    for (const a of document.querySelectorAll("header nav a")) {
      const href = a.getAttribute("href") ?? "";
      a.classList.toggle("active", href === "#/" + (parts[0] === "workers" ? "workers" : "") );
    }
    replace(this.main, view.el);
    await this.refresh();
  }

  /** Open the current view's event stream (closing any other), unless updates are paused or
   * the page is hidden. EventSource reconnects by itself, resuming from the last event id. */
  private follow(): void {
    const url = this.pollSeconds > 0 && !document.hidden ? this.view?.events ?? null : null;
    if (this.source && this.source.url.endsWith(url ?? "\0")) return;
    this.source?.close();
    this.source = null;
    this.streaming = false;
    if (!url) return this.showLive();
    const source = new EventSource(url);
    this.source = source;
    const changed = () => this.onEvent();
    // The stream starts from where Redis is when it opens: what changed between the view's
    // last read and then (a queue made meanwhile, say) is in no event, so read once more.
    source.addEventListener("open", () => { this.streaming = true; this.schedule(); changed(); });
    source.addEventListener("message", changed);
    source.addEventListener("queues", changed);
    source.addEventListener("unreachable", changed); // the refresh shows the error
    source.addEventListener("error", () => {
      // Reconnecting (or refused for good, e.g. 503 too many streams): poll meanwhile.
      this.streaming = false;
      if (source.readyState === EventSource.CLOSED && this.source === source) this.source = null;
      this.schedule();
    });
  }

  /** Something changed: refresh now, or as soon as EVENT_REFRESH_MS has passed since the last. */
  private onEvent(): void {
    if (this.eventTimer !== undefined) return;
    const wait = Math.max(this.lastRefresh + EVENT_REFRESH_MS - Date.now(), 0);
    this.eventTimer = window.setTimeout(() => {
      this.eventTimer = undefined;
      void this.refresh();
    }, wait);
  }

  async refresh(): Promise<void> {
    if (this.busy) {
      // One is in flight (perhaps for the view just left): run again as soon as it ends, so
      // a new view or a change an event announced is not left for the next poll.
      this.again = true;
      return;
    }
    if (!this.view) return this.schedule();
    this.busy = true;
    this.again = false;
    this.lastRefresh = Date.now();
    const view = this.view;
    try {
      await view.refresh();
      this.setLive(null);
      if (view === this.view) this.clearError();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        this.showLogin();
        this.busy = false;
        return;
      }
      this.showError(err);
    } finally {
      this.busy = false;
    }
    if (this.again) return this.refresh();
    this.schedule();
  }

  /** "down" while the server or Redis cannot be reached: the dot turns red and says so. */
  private liveDown = false;

  private setLive(state: "down" | null): void {
    this.liveDown = state === "down";
    this.showLive();
  }

  private showLive(): void {
    const on = this.pollSeconds > 0 && !document.hidden;
    this.live.classList.toggle("on", on && !this.liveDown);
    this.live.classList.toggle("down", this.liveDown);
    this.live.textContent = this.liveDown ? "offline" : !on ? "paused" : this.streaming ? "live" : "polling";
    this.live.title = this.liveDown ? "cannot reach Redis or the server; retrying"
      : this.streaming ? "updates as they happen (server-sent events)"
        : on ? `refreshing every ${this.pollSeconds} s` : "updates paused";
  }

  schedule(): void {
    window.clearTimeout(this.timer);
    const on = this.pollSeconds > 0 && !document.hidden;
    this.showLive();
    const seconds = this.streaming ? Math.max(this.pollSeconds, STREAMING_POLL_SECONDS) : this.pollSeconds;
    if (on) this.timer = window.setTimeout(() => void this.refresh(), seconds * 1000);
  }

  private showLogin(): void {
    window.clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
    this.streaming = false;
    this.view?.destroy?.();
    this.view = null;
    replace(this.main, loginView(this, () => void this.route()));
  }

  showError(err: unknown): void {
    const down = err instanceof ApiError && (err.code === "redis_unavailable" || err.status === 0);
    if (down) this.setLive("down");
    const message = err instanceof ApiError
      ? err.code === "redis_unavailable"
        // The server's message says what is wrong; say it once ("Redis is unreachable: ...").
        ? `${/^redis is unreachable/i.test(err.message) ? err.message : `Redis is unreachable: ${err.message}`}`
          .replace(/\.*$/, ". Retrying…")
        : `${err.message} (${err.code})`
      : String(err);
    this.banner.hidden = false;
    this.banner.className = "banner error";
    this.banner.textContent = plain(message);
  }

  notify(message: string): void {
    this.banner.hidden = false;
    this.banner.className = "banner info";
    this.banner.textContent = plain(message);
  }

  clearError(): void {
    if (this.banner.className.includes("error")) this.banner.hidden = true;
  }

  get readOnly(): boolean {
    return this.config?.read_only ?? false;
  }

  get ranges(): readonly Range[] {
    return this.config?.ranges.length ? this.config.ranges : DOCUMENTED_RANGES;
  }
}

new Dashboard().start();
