// Conveyor dashboard: hash-routed views over the JSON API, refreshed by polling.
import "./style.css";
import { api, ApiError, type Config, DOCUMENTED_RANGES, type Range } from "./api";
import { h, plain, replace } from "./dom";
import { loginView } from "./views/login";
import { overviewView } from "./views/overview";
import { queueView } from "./views/queue";
import { jobView } from "./views/job";
import { workersView } from "./views/workers";
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
    document.addEventListener("visibilitychange", () => this.schedule());
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
    } else if (parts[0] === "queues" && parts[1]) {
      view = queueView(this, parts[1], parts[2] || "waiting");
    } else if (parts[0] === "workers") {
      view = workersView(this);
    } else {
      view = overviewView(this);
    }
    this.view = view;
    for (const a of document.querySelectorAll("header nav a")) {
      const href = a.getAttribute("href") ?? "";
      a.classList.toggle("active", href === "#/" + (parts[0] === "workers" ? "workers" : "") );
    }
    replace(this.main, view.el);
    await this.refresh();
  }

  async refresh(): Promise<void> {
    if (!this.view || this.busy) return this.schedule();
    this.busy = true;
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
    this.live.textContent = this.liveDown ? "offline" : on ? "live" : "paused";
    this.live.title = this.liveDown ? "cannot reach Redis or the server; retrying" : "live updates";
  }

  schedule(): void {
    window.clearTimeout(this.timer);
    const on = this.pollSeconds > 0 && !document.hidden;
    this.showLive();
    if (on) this.timer = window.setTimeout(() => void this.refresh(), this.pollSeconds * 1000);
  }

  private showLogin(): void {
    window.clearTimeout(this.timer);
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
