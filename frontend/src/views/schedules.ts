import { api, type Schedule, streams } from "../api";
import { h, replace } from "../dom";
import { act, type App, badge, confirmDialog, empty, setTitle, type View } from "./common";

/** "0 3 * * * (Europe/Berlin)" or "every 30 s", with the bounds that apply. */
function timetable(s: Schedule): string {
  const when = s.cron ? `${s.cron}${s.tz && s.tz !== "UTC" ? ` (${s.tz})` : " (UTC)"}` : `every ${s.every ?? "?"} s`;
  const bounds = [s.limit ? `${s.runs} of ${s.limit} runs` : "", s.end_at ? `until ${at(s.end_at)}` : ""].filter(Boolean);
  return bounds.length ? `${when} · ${bounds.join(" · ")}` : when;
}

/** "skip · 5 s grace": what happens to a tick that came too late (no worker ran, Redis was
 * down), compact for the table; the title says it in words. */
function misfire(s: Schedule): HTMLElement {
  if (!s.misfire) return h("td", { class: "narrow-hide", "data-testid": "misfire" }, "—");
  const policy = s.misfire === "run_once" ? "run once" : "skip";
  const grace = s.misfire_grace === undefined ? "" : ` · ${s.misfire_grace} s grace`;
  const late = s.misfire_grace === undefined ? "too late" : `more than ${s.misfire_grace} s late`;
  const then = s.misfire === "run_once" ? "one catch-up run is made for the ticks missed" : "the missed ticks are skipped";
  return h("td", { class: "narrow-hide", "data-testid": "misfire", title: `A tick ${late} was missed: ${then}.` },
    `${policy}${grace}`);
}

function at(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString(undefined, { hour12: false }) : "—";
}

/** A queue's job schedulers: when each runs next, what its last run made, and the controls. */
export function schedulesView(app: App, queue: string): View {
  const enc = encodeURIComponent(queue);
  const tbody = h("tbody", {});
  const el = h("section", { class: "schedules" },
    h("div", { class: "row wrap" }, h("a", { href: `#/queues/${enc}`, class: "muted" }, `${queue} /`), h("h1", {}, "Schedules")),
    h("div", { class: "card" }, h("div", { class: "table-wrap", tabindex: 0 },
      h("table", { class: "table", "data-testid": "schedules" },
        h("thead", {}, h("tr", {}, ...["Schedule", "Job", "When", "Misfire", "Next run", "Last run", "Last job", "Runs", ""]
          .map((t, i) => h("th", { class: i === 7 ? "num narrow-hide" : [1, 2, 3, 5, 6].includes(i) ? "narrow-hide" : "" }, t)))),
        tbody))));

  function controls(s: Schedule): HTMLElement {
    const buttons = h("div", { class: "row wrap" });
    const cell = h("td", { class: "controls" }, buttons);
    if (app.readOnly) return cell;
    const button = (label: string, testid: string, fn: () => Promise<unknown>, cls = "") => {
      const b = h("button", { class: cls, "data-testid": testid }, label);
      b.addEventListener("click", () => void fn());
      buttons.append(b);
    };
    button(s.paused ? "Resume" : "Pause", s.paused ? "schedule-resume" : "schedule-pause",
      () => act(app, () => api.scheduleAction(queue, s.id, s.paused ? "resume" : "pause")));
    button("Run now", "schedule-trigger",
      () => act(app, () => api.scheduleAction(queue, s.id, "trigger"), `Schedule ${s.id}: one extra run queued`));
    button("Remove", "schedule-remove", async () => {
      if (await confirmDialog(`Remove schedule ${s.id}?`, "No more jobs come from it; jobs it made stay.", "Remove", true)) {
        await act(app, () => api.removeSchedule(queue, s.id), `Schedule ${s.id} removed`);
      }
    }, "danger ghost");
    return cell;
  }

  async function refresh(): Promise<void> {
    const { schedules } = await api.schedules(queue);
    setTitle(`${queue} schedules (${schedules.length})`);
    replace(tbody, schedules.length ? schedules.map((s) => h("tr", { "data-schedule": s.id },
      h("td", { class: "mono" }, s.id, s.paused ? h("span", { class: "badge s-paused" }, "paused") : null,
        s.ended ? h("span", { class: "badge" }, "ended") : null),
      h("td", { class: "narrow-hide" }, s.name),
      h("td", { class: "mono narrow-hide" }, timetable(s)),
      misfire(s),
      h("td", { "data-testid": "next-run" }, s.paused ? "paused" : at(s.next_run)),
      h("td", { class: "narrow-hide" }, at(s.last_run)),
      h("td", { class: "narrow-hide" }, s.last_job
        ? [h("a", { class: "mono", href: `#/queues/${enc}/jobs/${encodeURIComponent(s.last_job)}` }, `#${s.last_job}`), " ",
          s.last_job_state ? badge(s.last_job_state) : h("span", { class: "muted" }, "gone")]
        : "—"),
      h("td", { class: "num narrow-hide" }, String(s.runs)),
      controls(s))) :
      h("tr", {}, h("td", { colspan: 9 }, empty(`No schedules on ${queue}. Add one with queue.schedule("id", "job", data, cron="0 3 * * *").`))));
  }

  return { el, refresh, events: streams.queue(queue) };
}
