import { api, type GroupPage, streams } from "../api";
import { h, num, replace } from "../dom";
import { type App, empty, setTitle, type View } from "./common";

type Limit = GroupPage["flow"]["rate_limit"];

function plural(count: number, noun: string): string {
  return `${num(count)} ${noun}${count === 1 ? "" : "s"}`;
}

export function rateText(limit: Limit): string {
  return limit ? `${num(limit.limit)} per ${limit.per} s` : "none";
}

/** When a hold (a RateLimited, a window full) ends: "until 10:42:07", or "" when none holds. */
export function holdText(until: number | null | undefined, now = Date.now()): string {
  return until && until > now ? `until ${new Date(until).toLocaleTimeString(undefined, { hour12: false })}` : "";
}

/** A queue's groups, most waiting first: counts, limits (their own or the defaults), paused. */
export function groupsView(_app: App, queue: string): View {
  const enc = encodeURIComponent(queue);
  let page = 1;
  const size = 50;
  const summary = h("div", { class: "queue-info muted", "data-testid": "flow-summary" });
  const tbody = h("tbody", {});
  const pager = h("div", { class: "pager row" });
  const el = h("section", { class: "groups" },
    h("div", { class: "row wrap" }, h("a", { href: `#/queues/${enc}`, class: "muted" }, `${queue} /`), h("h1", {}, "Groups")),
    summary,
    h("div", { class: "card" }, h("div", { class: "table-wrap", tabindex: 0 },
      h("table", { class: "table", "data-testid": "groups" },
        h("thead", {}, h("tr", {}, ...[["Group", ""], ["Waiting", "num"], ["Active", "num"], ["Concurrency", "num"],
          ["Rate limit", "narrow-hide"], ["Weight", "num narrow-hide"], ["Max size", "num narrow-hide"], ["Held", "narrow-hide"]]
          .map(([t, cls]) => h("th", { class: cls }, t)))),
        tbody)), pager));

  async function refresh(): Promise<void> {
    const r = await api.groups(queue, page, size);
    const now = Date.now();
    setTitle(`${queue} groups (${r.total})`);
    const d = r.flow.group_defaults;
    replace(summary,
      `${plural(r.total, "group")} · ${plural(r.flow.grouped_waiting, "grouped job")} waiting · queue rate limit ${rateText(r.flow.rate_limit)}`,
      ` · group defaults: concurrency ${d.concurrency ?? "unlimited"}, rate limit ${rateText(d.rate_limit)}, weight ${d.weight}`);
    replace(tbody, r.groups.length ? r.groups.map((g) => h("tr", { "data-group": g.name },
      h("td", {}, g.name, g.paused ? h("span", { class: "badge s-paused" }, "paused") : null,
        g.overrides.length ? h("span", { class: "muted small", title: `own settings: ${g.overrides.join(", ")}` }, " · own settings") : null),
      h("td", { class: "num" }, num(g.waiting)),
      h("td", { class: "num" }, num(g.active)),
      h("td", { class: "num" }, g.concurrency === null ? "unlimited" : String(g.concurrency)),
      h("td", { class: "narrow-hide" }, rateText(g.rate_limit)),
      h("td", { class: "num narrow-hide" }, String(g.weight)),
      h("td", { class: "num narrow-hide" }, g.max_size === null ? "—" : num(g.max_size)),
      h("td", { class: "narrow-hide", "data-testid": "held" }, holdText(g.held_until, now) || "—"))) :
      h("tr", {}, h("td", { colspan: 8 }, empty(`No groups on ${queue}: add a job with group="tenant-42" and it shows up here.`))));
    const pages = Math.max(Math.ceil(r.total / size), 1);
    const prev = h("button", { disabled: page <= 1, onclick: () => { page -= 1; void refresh(); } }, "← Previous");
    const next = h("button", { disabled: page >= pages, onclick: () => { page += 1; void refresh(); } }, "Next →");
    replace(pager, prev, h("span", { class: "muted" }, `Page ${page} of ${pages}`), next);
  }

  return { el, refresh, events: streams.queue(queue) };
}
