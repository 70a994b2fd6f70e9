import { api } from "../api";
import { ago, h, replace } from "../dom";
import { type App, empty, setTitle, type View } from "./common";

export function workersView(_app: App): View {
  const tbody = h("tbody", {});
  const el = h("section", {},
    h("h1", {}, "Workers"),
    h("div", { class: "card" }, h("div", { class: "table-wrap", tabindex: 0 },
      h("table", { class: "table", "data-testid": "workers" },
        h("thead", {}, h("tr", {}, ...["Worker", "Host", "PID", "Queues", "Busy", "Concurrency", "Processed", "Failed", "Heartbeat", "Up since"]
          .map((t, i) => h("th", { class: i >= 4 && i <= 7 ? "num" : "" }, t)))),
        tbody))));
  async function refresh(): Promise<void> {
    const { workers } = await api.workers();
    setTitle(`Workers (${workers.length} online)`);
    const now = Date.now();
    replace(tbody, workers.length ? workers.map((w) => h("tr", {},
      h("td", { class: "mono" }, w.id), h("td", {}, w.host), h("td", { class: "mono" }, String(w.pid)),
      h("td", {}, w.queues.map((q) => h("a", { class: "chip", href: `#/queues/${encodeURIComponent(q)}` }, q))),
      h("td", { class: "num" }, h("span", { class: "util" }, `${w.busy}`), h("span", { class: "muted" }, ` (${Math.round((100 * w.busy) / Math.max(w.concurrency, 1))}%)`)),
      h("td", { class: "num" }, String(w.concurrency)),
      h("td", { class: "num" }, w.processed.toLocaleString()),
      h("td", { class: "num" }, w.failed.toLocaleString()),
      h("td", {}, ago(w.last_heartbeat, now)),
      h("td", {}, ago(w.started_at, now)))) :
      h("tr", {}, h("td", { colspan: 10 }, empty("No workers online. Start one with: conveyor worker app:queue"))));
  }
  return { el, refresh };
}
