import { api, type Metrics, type QueueSummary, STATES, streams } from "../api";
import { latencyChart, throughputChart } from "../charts";
import { duration, h, num, replace } from "../dom";
import { type App, countsCells, empty, NARROW_HIDDEN, rangeLabel, setTitle, type View } from "./common";

export function overviewView(app: App): View {
  let range = app.ranges[0];
  const stats = h("div", { class: "stats" });
  const warnings = h("div", {});
  const tbody = h("tbody", {});
  const throughput = throughputChart();
  const wait = latencyChart("wait");
  const run = latencyChart("run");
  // One of several ranges, pressed: a group of toggle buttons.
  const tabs = h("div", { class: "tabs small", role: "group", "aria-label": "chart range" });
  const renderTabs = () => replace(tabs, app.ranges.map((key) => {
    const b = h("button", { class: key === range ? "tab active" : "tab", "aria-pressed": key === range ? "true" : "false", "data-testid": `range-${key}` }, rangeLabel(key));
    b.addEventListener("click", () => { range = key; renderTabs(); void refresh(); });
    return b;
  }));
  renderTabs();
  const el = h("section", { class: "overview" },
    h("div", { class: "row" }, h("h1", {}, "Overview"), h("div", { class: "spacer" }), tabs),
    warnings, stats,
    h("div", { class: "charts" }, throughput.el, wait.el, run.el),
    h("div", { class: "card" },
      h("h2", {}, "Queues"),
      h("div", { class: "table-wrap", tabindex: 0 },
        h("table", { class: "table", "data-testid": "queues" },
          h("thead", {}, h("tr", {}, h("th", {}, "Queue"), ...STATES.map((s) => h("th", { class: NARROW_HIDDEN.has(s) ? "num narrow-hide" : "num" }, s)),
            h("th", { class: "num narrow-hide" }, "Workers"), h("th", { class: "num narrow-hide" }, "Oldest waiting"))),
          tbody))));

  const stat = (label: string, value: string, cls = "", testid?: string) =>
    h("div", { class: `stat ${cls}`, "data-testid": testid }, h("div", { class: "stat-value" }, value), h("div", { class: "stat-label" }, label));

  async function refresh(): Promise<void> {
    const [{ queues }, metrics] = await Promise.all([api.queues(), api.metrics(null, range)]);
    render(queues, metrics);
  }

  function render(queues: QueueSummary[], metrics: Metrics): void {
    const total = (s: keyof QueueSummary["counts"]) => queues.reduce((n, q) => n + q.counts[s], 0);
    const workers = queues.reduce((n, q) => Math.max(n, q.workers), 0);
    const oldest = queues.reduce<number | null>((n, q) => q.oldest_waiting_ms === null ? n : Math.max(n ?? 0, q.oldest_waiting_ms), null);
    const sm = metrics.summary;
    setTitle("Overview", { waiting: total("waiting"), failed: total("failed") });
    replace(stats,
      stat("waiting", num(total("waiting")), "", "total-waiting"),
      // A count takes its state's colour only when it is not zero: a zero is nothing to see.
      stat("active", num(total("active")), total("active") ? "accent" : "zero", "total-active"),
      stat(`completed (${range})`, num(sm.completed), sm.completed ? "ok" : "zero", "total-completed"),
      stat(`retried (${range})`, num(sm.retried), sm.retried ? "warn" : "zero", "total-retried"),
      stat(`failed (${range})`, num(sm.failed), sm.failed ? "bad" : "zero", "total-failed"),
      stat("wait p95", duration(sm.wait.p95)),
      stat("run p95", duration(sm.run.p95)),
      stat("oldest waiting", duration(oldest)),
      stat("workers online", String(workers), workers ? "" : "warn", "workers-online"));
    const idle = queues.filter((q) => q.counts.waiting > 0 && q.workers === 0);
    replace(warnings, idle.map((q) => h("div", { class: "alert warn", "data-testid": "no-workers" },
      `Queue “${q.name}” has ${num(q.counts.waiting)} waiting jobs and no workers.`)));
    replace(tbody, queues.length ? queues.map((q) => h("tr", { "data-queue": q.name },
      h("td", {}, h("a", { href: `#/queues/${encodeURIComponent(q.name)}` }, q.name),
        q.paused ? h("span", { class: "badge s-paused" }, "paused") : null),
      ...countsCells(q.name, q.counts),
      h("td", { class: q.workers === 0 && q.counts.waiting > 0 ? "num narrow-hide warn-text" : "num narrow-hide" }, String(q.workers)),
      h("td", { class: "num narrow-hide" }, duration(q.oldest_waiting_ms)))) :
      h("tr", {}, h("td", { colspan: 8 }, empty("No queues yet: add a job and it shows up here."))));
    throughput.update(metrics);
    wait.update(metrics);
    run.update(metrics);
  }

  return {
    el,
    refresh,
    events: streams.all,
    destroy: () => { throughput.destroy(); wait.destroy(); run.destroy(); },
    restyle: () => { throughput.restyle(); wait.restyle(); run.restyle(); },
  };
}
