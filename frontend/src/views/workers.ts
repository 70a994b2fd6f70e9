import { api, streams, type WorkerNow } from "../api";
import { ago, duration, h, replace } from "../dom";
import { type App, empty, setTitle, type View } from "./common";

/** What a worker runs now: each job (linked) and how long it has run, as Sidekiq's Busy page. */
function runningCell(w: WorkerNow, now: number): HTMLElement {
  if (!w.running.length) return h("td", { class: "muted" }, "idle");
  const more = w.running_total - w.running.length;
  return h("td", { "data-testid": "running" },
    h("ul", { class: "running" }, ...w.running.map((j) =>
      h("li", {},
        h("a", { class: "mono", href: `#/queues/${encodeURIComponent(j.queue)}/jobs/${encodeURIComponent(j.id)}` }, `#${j.id}`),
        " ", j.name ?? "—", h("span", { class: "muted" }, ` · ${j.queue} · for ${duration(Math.max(now - j.since, 0))}`)))),
    more > 0 ? h("div", { class: "muted small" }, `and ${more.toLocaleString()} more`) : null);
}

export function workersView(_app: App): View {
  const tbody = h("tbody", {});
  const columns: [string, string][] = [["Worker", ""], ["Host", "narrow-hide"], ["PID", "narrow-hide"], ["Queues", "narrow-hide"],
    ["Busy", "num"], ["Running now", ""], ["Concurrency", "num narrow-hide"], ["Processed", "num narrow-hide"],
    ["Failed", "num narrow-hide"], ["Restarts", "num narrow-hide"], ["Heartbeat", "narrow-hide"], ["Up since", "narrow-hide"]];
  const el = h("section", {},
    h("h1", {}, "Workers"),
    h("div", { class: "card" }, h("div", { class: "table-wrap", tabindex: 0 },
      h("table", { class: "table", "data-testid": "workers" },
        h("thead", {}, h("tr", {}, ...columns.map(([t, cls]) => h("th", { class: cls }, t)))),
        tbody))));
  async function refresh(): Promise<void> {
    const { workers } = await api.workers();
    setTitle(`Workers (${workers.length} online)`);
    const now = Date.now();
    replace(tbody, workers.length ? workers.map((w) => h("tr", { "data-worker": w.id },
      h("td", { class: "mono" }, w.id), h("td", { class: "narrow-hide" }, w.host), h("td", { class: "mono narrow-hide" }, String(w.pid)),
      h("td", { class: "narrow-hide" }, w.queues.map((q) => h("a", { class: "chip", href: `#/queues/${encodeURIComponent(q)}` }, q))),
      h("td", { class: "num" }, h("span", { class: "util" }, `${w.busy}`), h("span", { class: "muted" }, ` (${Math.round((100 * w.busy) / Math.max(w.concurrency, 1))}%)`)),
      runningCell(w, now),
      h("td", { class: "num narrow-hide" }, String(w.concurrency)),
      h("td", { class: "num narrow-hide" }, w.processed.toLocaleString()),
      h("td", { class: "num narrow-hide" }, w.failed.toLocaleString()),
      h("td", { class: w.restarts ? "num narrow-hide warn-text" : "num narrow-hide", "data-testid": "restarts" }, String(w.restarts)),
      h("td", { class: "narrow-hide" }, ago(w.last_heartbeat, now)),
      h("td", { class: "narrow-hide" }, ago(w.started_at, now)))) :
      h("tr", {}, h("td", { colspan: columns.length }, empty("No workers online. Start one with: conveyor worker app:queue"))));
  }
  return { el, refresh, events: streams.all };
}
