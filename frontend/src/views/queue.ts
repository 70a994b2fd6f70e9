import { api, type BulkAction, type JobPage, type JobSummary, type QueueDetail, type State, STATES, streams } from "../api";
import { latencyChart, throughputChart } from "../charts";
import { ago, duration, h, num, replace } from "../dom";
import { act, type App, confirmDialog, empty, progressBar, setTitle, type View } from "./common";
import { holdText, rateText } from "./groups";

export function queueView(app: App, name: string, initialState: string): View {
  const state: State = (STATES as readonly string[]).includes(initialState) ? (initialState as State) : "waiting";
  const enc = encodeURIComponent(name);
  let page = 1;
  let size = 20;
  let filterName = "";
  let search = "";
  const selected = new Set<string>();
  let detail: QueueDetail | null = null;
  let current: JobPage | null = null;
  /** A filtered view searches every job of the state, a bounded slice per call (api.search):
   * the matches so far, where to go on from, and how far it got. */
  const found = { hits: [] as JobSummary[], cursor: null as string | null, done: false, scanned: 0, total: 0, running: false, run: 0 };
  const filtering = () => Boolean(filterName || search);

  const title = h("h1", {}, name);
  const pauseBtn = h("button", { "data-testid": "pause" }, "Pause");
  pauseBtn.addEventListener("click", () => void act(app, () => api.pause(name, !detail?.paused)));
  const info = h("div", { class: "queue-info muted" });
  // Links to each state's list: a navigation, not an ARIA tablist (whose tabs would need panels).
  const tabs = h("nav", { class: "tabs", "aria-label": "jobs by state" });
  const nameInput = h("input", { type: "search", placeholder: "Job name", "aria-label": "filter by job name", "data-testid": "filter-name" });
  const searchInput = h("input", { type: "search", placeholder: "Search in data…", "aria-label": "search in job data", "data-testid": "search" });
  const idInput = h("input", { type: "search", placeholder: "Find by id", "aria-label": "find job by id", "data-testid": "find-id" });
  const filters = h("form", { class: "filters" }, nameInput, searchInput, h("button", { type: "submit" }, "Filter"));
  filters.addEventListener("submit", (ev) => {
    ev.preventDefault();
    filterName = nameInput.value.trim();
    search = searchInput.value.trim();
    page = 1;
    Object.assign(found, { hits: [], cursor: null, done: false, scanned: 0, total: 0 });
    if (filtering()) void searchMore();
    void app.refresh();
  });
  const findForm = h("form", { class: "filters" }, idInput, h("button", { type: "submit" }, "Open"));
  findForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (idInput.value.trim()) location.hash = `#/queues/${enc}/jobs/${encodeURIComponent(idInput.value.trim())}`;
  });

  const bulkBar = h("div", { class: "bulk row" });
  const stateActions = h("div", { class: "row" });
  const tbody = h("tbody", {});
  const pager = h("div", { class: "pager row" });
  const selectAll = h("input", { type: "checkbox", "aria-label": "select all", "data-testid": "select-all" });
  selectAll.addEventListener("change", () => {
    for (const job of current?.jobs ?? []) selectAll.checked ? selected.add(job.id) : selected.delete(job.id);
    renderRows();
  });
  const throughput = throughputChart();
  const run = latencyChart("run");

  const el = h("section", { class: "queue" },
    h("div", { class: "row wrap" }, h("a", { href: "#/", class: "muted" }, "Queues /"), title, h("div", { class: "spacer" }),
      h("a", { href: `#/queues/${enc}/groups`, "data-testid": "groups-link" }, "Groups"),
      h("a", { href: `#/queues/${enc}/schedules`, "data-testid": "schedules-link" }, "Schedules"), pauseBtn),
    info,
    h("div", { class: "charts two" }, throughput.el, run.el),
    tabs,
    h("div", { class: "card" },
      h("div", { class: "toolbar row wrap" }, filters, findForm, h("div", { class: "spacer" }), stateActions),
      bulkBar,
      h("div", { class: "table-wrap", tabindex: 0 }, h("table", { class: "table jobs", "data-testid": "jobs" },
        h("thead", {}, h("tr", {}, h("th", { class: "check" }, selectAll), h("th", {}, "Id"), h("th", {}, "Name"),
          h("th", { class: "narrow-hide" }, "Data"), h("th", {}, "Attempts"), h("th", { class: "narrow-hide" }, "Progress"),
          h("th", {}, state === "failed" ? "Error" : "When"))),
        tbody)),
      pager));

  function renderTabs(): void {
    replace(tabs, STATES.map((s) => h("a", {
      class: s === state ? "tab active" : "tab", href: `#/queues/${enc}/${s}`, "data-testid": `tab-${s}`,
      "aria-current": s === state ? "page" : null,
    }, s, h("span", { class: "tab-count" }, num(detail?.counts[s] ?? 0)))));
  }

  function renderHeader(): void {
    if (!detail) return;
    setTitle(name, detail.counts);
    pauseBtn.textContent = detail.paused ? "Resume" : "Pause";
    pauseBtn.className = detail.paused ? "primary" : "";
    pauseBtn.hidden = app.readOnly;
    title.replaceChildren(name, detail.paused ? h("span", { class: "badge s-paused" }, "paused") : "");
    const m = detail.metrics;
    replace(info,
      `${detail.workers.length} ${detail.workers.length === 1 ? "worker" : "workers"} · ${detail.workers.reduce((n, w) => n + w.busy, 0)} busy · `,
      `last hour: ${num(m.completed)} completed, ${num(m.failed)} failed · `,
      `wait p50/p95/p99 ${duration(m.wait.p50)} / ${duration(m.wait.p95)} / ${duration(m.wait.p99)} · `,
      `run p50/p95/p99 ${duration(m.run.p50)} / ${duration(m.run.p95)} / ${duration(m.run.p99)} · `,
      `oldest waiting ${duration(detail.oldest_waiting_ms)}`);
    // Flow control: say when a limit is holding jobs back, and until when.
    const flow = detail.flow;
    const held = holdText(Math.max(flow.limited_until ?? 0, flow.held_until ?? 0));
    if (held && detail.counts.waiting > 0) {
      // A RateLimited hold of the queue holds only the jobs without a group (the groups keep their turns).
      const byHandler = flow.held_until && flow.held_until >= (flow.limited_until ?? 0);
      const text = byHandler ? `Jobs without a group are held back by a handler that asked to wait (RateLimited) ${held}.`
        : `Jobs are held back by the rate limit (${rateText(flow.rate_limit)}) ${held}.`;
      info.append(h("div", { class: "alert warn", "data-testid": "flow-held" }, text));
    }
    if (detail.counts.waiting > 0 && detail.workers.length === 0) {
      info.append(h("div", { class: "alert warn", "data-testid": "no-workers" }, "Jobs are waiting and no worker is serving this queue."));
    }
    const count = detail.counts[state];
    const buttons: HTMLElement[] = [];
    if (!app.readOnly && state === "failed") {
      buttons.push(button("Retry all", "retry-all", count, async () => {
        if (await confirmDialog("Retry all failed jobs?", `${num(count)} failed jobs will be queued again.`, `Retry ${num(count)}`)) {
          await act(app, () => api.retryAll(name, "failed"), `Retried ${num(count)} jobs`);
        }
      }));
    }
    if (!app.readOnly && state === "delayed") {
      buttons.push(button("Run all now", "promote-all", count, async () => {
        if (await confirmDialog("Promote all delayed jobs?", `${num(count)} delayed jobs will run now.`, `Promote ${num(count)}`)) {
          await act(app, () => api.retryAll(name, "delayed"));
        }
      }));
    }
    if (!app.readOnly && state !== "active") {
      buttons.push(button("Clean all", "clean-all", count, async () => {
        if (await confirmDialog(`Delete all ${state} jobs?`, `${num(count)} ${state} jobs will be deleted. This cannot be undone.`, `Delete ${num(count)}`, true)) {
          await act(app, () => api.clean(name, state));
        }
      }, true));
    }
    replace(stateActions, buttons);
  }

  function button(label: string, testid: string, count: number, onClick: () => Promise<void>, danger = false): HTMLElement {
    const b = h("button", { class: danger ? "danger ghost" : "", "data-testid": testid, disabled: count === 0 }, label);
    b.addEventListener("click", () => void onClick());
    return b;
  }

  function renderBulk(): void {
    if (app.readOnly || selected.size === 0) { replace(bulkBar); return; }
    const actions: [BulkAction, string][] = [];
    if (state === "failed") actions.push(["retry", "Retry"]);
    if (state === "delayed") actions.push(["promote", "Run now"]);
    if (state !== "active") actions.push(["remove", "Delete"]);
    replace(bulkBar, h("span", { "data-testid": "selected-count" }, `${selected.size} selected`),
      ...actions.map(([action, label]) => {
        const b = h("button", { class: action === "remove" ? "danger ghost" : "primary", "data-testid": `bulk-${action}` }, label);
        b.addEventListener("click", async () => {
          const ids = [...selected];
          if (action === "remove" && !(await confirmDialog(`Delete ${ids.length} jobs?`, "This cannot be undone.", `Delete ${ids.length}`, true))) return;
          selected.clear();
          await act(app, async () => {
            const r = await api.bulk(name, action, ids);
            app.notify(`${label}: ${r.done} of ${ids.length} jobs`);
          });
        });
        return b;
      }),
      h("button", { class: "ghost", onclick: () => { selected.clear(); renderRows(); } }, "Clear"));
  }

  /** Search on until `size` more matches are in, the whole state was read, or Stop. */
  async function searchMore(): Promise<void> {
    const run = ++found.run;
    const want = found.hits.length + size;
    found.running = true;
    renderPager();
    try {
      while (run === found.run && !found.done && found.hits.length < want) {
        const r = await api.search(name, { state, size: want - found.hits.length, name: filterName, q: search, cursor: found.cursor ?? undefined });
        if (run !== found.run) return; // stopped, or a newer search began
        found.hits.push(...r.jobs);
        found.cursor = r.next_cursor;
        found.done = r.next_cursor === null;
        found.scanned += r.scanned;
        found.total = r.total;
        renderRows();
        renderPager();
      }
    } catch (err) {
      app.showError(err);
    } finally {
      if (run === found.run) found.running = false;
      renderPager();
    }
  }

  function renderRows(): void {
    const now = Date.now();
    const jobs = filtering() ? found.hits : current?.jobs ?? [];
    selectAll.checked = jobs.length > 0 && jobs.every((j) => selected.has(j.id));
    replace(tbody, jobs.length ? jobs.map((job) => {
      const box = h("input", { type: "checkbox", "aria-label": `select job ${job.id}`, checked: selected.has(job.id), "data-testid": "select-job" });
      box.addEventListener("change", () => { box.checked ? selected.add(job.id) : selected.delete(job.id); renderBulk(); selectAll.checked = jobs.every((j) => selected.has(j.id)); });
      const link = `#/queues/${enc}/jobs/${encodeURIComponent(job.id)}`;
      const when = state === "failed" ? h("span", { class: "error-text" }, job.error ?? "")
        : state === "delayed" ? `runs in ${duration((job.run_at ?? now) - now)}`
        : ago(job.finished_at ?? job.started_at ?? job.created_at, now);
      return h("tr", { "data-job": job.id },
        h("td", { class: "check" }, box),
        h("td", { class: "mono" }, h("a", { href: link }, job.id)),
        h("td", {}, h("a", { href: link }, job.name)),
        h("td", { class: "mono preview narrow-hide" }, job.data_preview),
        h("td", { class: "num" }, `${job.attempts_made}/${job.attempts}`),
        h("td", { class: "narrow-hide" }, progressBar(job.progress) ?? ""),
        h("td", {}, when));
    }) : h("tr", {}, h("td", { colspan: 7 }, empty(filterName || search ? "No jobs match." : `No ${state} jobs.`))));
    renderBulk();
  }

  function renderSearchPager(): void {
    const progress = `${num(found.hits.length)} ${found.hits.length === 1 ? "match" : "matches"} · searched ${num(found.scanned)} of ${num(found.total)} ${state} jobs`;
    const control = found.running
      ? h("button", { "data-testid": "search-stop", onclick: () => { found.run += 1; found.running = false; renderPager(); } }, "Stop")
      : found.done ? h("span", { class: "muted", "data-testid": "search-done" }, "all searched")
        : h("button", { "data-testid": "search-more", onclick: () => void searchMore() }, "Search on");
    replace(pager, h("span", { class: "muted", "data-testid": "search-progress", "aria-live": "polite" }, progress, found.running ? " …" : ""), control);
  }

  function renderPager(): void {
    if (filtering()) return renderSearchPager();
    if (!current) return;
    const prev = h("button", { disabled: page <= 1 }, "← Newer");
    prev.addEventListener("click", () => { page -= 1; void app.refresh(); });
    const next = h("button", { disabled: page >= current.pages }, "Older →");
    next.addEventListener("click", () => { page += 1; void app.refresh(); });
    const sizeSel = h("select", { "aria-label": "page size" }, ...[20, 50, 100].map((n) => h("option", { value: n, selected: n === size }, `${n} / page`)));
    sizeSel.addEventListener("change", () => { size = Number(sizeSel.value); page = 1; void app.refresh(); });
    replace(pager, prev, h("span", { class: "muted" },
      `Page ${current.page} of ${current.pages} · ${num(current.total)} jobs` +
      (current.truncated ? ` (searched the newest ${num(current.scanned ?? 0)})` : "")), next, h("div", { class: "spacer" }), sizeSel);
  }

  async function refresh(): Promise<void> {
    // A search's matches stay as found; a refresh updates everything around them.
    const [d, jobs, metrics] = await Promise.all([
      api.queue(name),
      filtering() ? Promise.resolve(null) : api.jobs(name, { state, page, size }),
      api.metrics(name, app.ranges[0]),
    ]);
    detail = d;
    if (jobs) current = jobs;
    renderTabs();
    renderHeader();
    renderRows();
    renderPager();
    throughput.update(metrics);
    run.update(metrics);
  }

  return {
    el,
    refresh,
    events: streams.queue(name),
    destroy: () => { throughput.destroy(); run.destroy(); },
    restyle: () => { throughput.restyle(); run.restyle(); },
  };
}
