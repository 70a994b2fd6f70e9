import { api, ApiError, type Batch, type Job, streams } from "../api";
import { duration, h, pretty, replace, stamp } from "../dom";
import { act, type App, badge, confirmDialog, progressBar, setTitle, type View } from "./common";

/** Children listed with their states in a parent's view (a 1,000-child flow lists a page). */
const CHILDREN_SHOWN = 50;

export function jobView(app: App, queue: string, id: string): View {
  const enc = encodeURIComponent(queue);
  const head = h("div", { class: "row wrap" });
  const actions = h("div", { class: "row" });
  const body = h("div", { class: "job-grid" });
  const el = h("section", { class: "job" }, head, actions, body);
  let job: Job | null = null;
  /** The states of the children shown (a flow's tree, one level at a time) and the batch. */
  let childStates = new Map<string, string>();
  let batch: Batch | null = null;

  function pane(title: string, ...content: (Node | string | null)[]): HTMLElement {
    return h("div", { class: "card" }, h("h2", {}, title), ...content);
  }

  function render(j: Job): void {
    setTitle(`#${j.id} ${j.name} (${j.state})`);
    replace(head,
      h("a", { href: `#/queues/${enc}`, class: "muted" }, `${queue} /`),
      h("h1", { "data-testid": "job-title" }, h("span", { class: "mono" }, `#${j.id}`), " ", h("span", { "data-testid": "job-name" }, j.name)),
      badge(j.state),
      h("div", { class: "spacer" }),
      h("a", { class: "permalink", href: `#/queues/${enc}/jobs/${encodeURIComponent(j.id)}`, title: "link to this job" }, "Permalink"));
    const buttons: HTMLElement[] = [];
    const add = (label: string, testid: string, fn: () => Promise<unknown>, cls = "") => {
      const b = h("button", { class: cls, "data-testid": testid }, label);
      b.addEventListener("click", () => void fn());
      buttons.push(b);
    };
    if (!app.readOnly) {
      if (j.state === "failed") add("Retry", "retry", () => act(app, () => api.action(queue, j.id, "retry"), "Job queued for retry"), "primary");
      if (j.state === "delayed") add("Run now", "promote", () => act(app, () => api.action(queue, j.id, "promote")), "primary");
      if (j.state === "waiting" || j.state === "delayed") add("Cancel", "cancel", async () => {
        if (await confirmDialog("Cancel this job?", "It will not run and is removed.", "Cancel job", true)) {
          await act(app, () => api.action(queue, j.id, "cancel"), "Job cancelled");
          location.hash = `#/queues/${enc}`;
        }
      }, "ghost");
      if (j.state !== "active") add("Delete", "delete", async () => {
        if (await confirmDialog("Delete this job?", "This cannot be undone.", "Delete", true)) {
          await act(app, () => api.remove(queue, j.id), "Job deleted");
          location.hash = `#/queues/${enc}`;
        }
      }, "danger ghost");
    }
    replace(actions, buttons);

    const progress = progressBar(j.progress);
    const facts: [string, string][] = [
      ["State", j.state], ["Attempts", `${j.attempts_made} of ${String(j.options.attempts ?? 1)}`],
      ["Worker", j.worker ?? "—"], ["Created", stamp(j.created_at)], ["Queued", stamp(j.queued_at)],
      ["Started", stamp(j.started_at)], ["Finished", stamp(j.finished_at)],
      ["Waited", duration(j.wait_ms)], ["Ran", duration(j.run_ms)],
    ];
    if (j.run_at) facts.push(["Runs at", stamp(j.run_at)]);
    if (j.group) facts.push(["Group", j.group]);
    if (j.stalls) facts.push(["Stalls", String(j.stalls)]);
    const attempts = [...j.attempts].reverse();
    // A manual retry counts attempts from 1 again: mark where each such run began, so that
    // "2, 1, 2, 1" reads as two runs of two attempts.
    const runStarts = new Set<(typeof j.attempts)[number]>();
    j.attempts.forEach((a, i) => {
      const before = j.attempts[i - 1];
      if (i > 0 && (a.attempt ?? 0) <= (before?.attempt ?? 0)) runStarts.add(a);
    });
    replace(body,
      pane("Details",
        progress ? h("div", { class: "progress-row" }, progress, h("span", { class: "muted" }, pretty(j.progress))) :
          j.progress !== null ? h("div", {}, "Progress: ", h("code", {}, pretty(j.progress))) : null,
        h("dl", { class: "facts" }, ...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
        j.decode_error ? h("div", { class: "alert warn" }, j.decode_error) : null),
      workflowPane(j),
      pane("Data", h("pre", { class: "json", "data-testid": "job-data" }, pretty(j.data))),
      pane("Result", h("pre", { class: "json", "data-testid": "job-result" }, j.result === null ? "—" : pretty(j.result))),
      errorPane(j),
      pane(`Attempts (${j.attempts.length} failed)`,
        attempts.length ? h("div", { class: "attempts" }, ...attempts.flatMap((a) => [
          h("details", { class: "attempt", open: a === attempts[0] },
            h("summary", {}, `Attempt ${a.attempt ?? "?"} · ${stamp(a.at)} · ${duration(a.duration_ms)} · `, h("span", { class: j.state === "failed" ? "error-text" : "earlier-error" }, a.error ?? "")),
            h("pre", { class: "traceback", "data-testid": "traceback" }, a.traceback ?? "(no traceback)"),
            a.worker ? h("div", { class: "muted" }, `worker ${a.worker}`) : null),
          runStarts.has(a) ? h("div", { class: "retry-marker muted small", "data-testid": "manual-retry" },
            "↻ retried by hand: the attempts above count from 1 again") : null]))
          : h("p", { class: "muted" }, "No failed attempts.")),
      pane("Timeline", h("ol", { class: "timeline" }, ...j.timeline.map((e) =>
        h("li", {}, h("span", { class: "t-event" }, e.event), h("span", { class: "muted" }, ` ${stamp(e.at)}`), e.detail ? h("div", { class: "muted small" }, e.detail) : null)))),
      pane(`Logs (${j.logs.length})`, h("pre", { class: "logs", "data-testid": "logs" }, j.logs.length ? j.logs.join("\n") : "—")),
      pane("Options", h("pre", { class: "json" }, pretty(j.options))));
  }

  /** A flow's parent and children (each linked, with its state), and the batch's counts. */
  function workflowPane(j: Job): HTMLElement | null {
    const children = j.children ?? [];
    if (!j.parent && !children.length && !j.batch) return null;
    const link = (ref: { queue: string; id: string }) =>
      h("a", { class: "mono", href: `#/queues/${encodeURIComponent(ref.queue)}/jobs/${encodeURIComponent(ref.id)}` },
        ref.queue === queue ? `#${ref.id}` : `${ref.queue} #${ref.id}`);
    const shown = children.slice(0, CHILDREN_SHOWN);
    return pane("Workflow",
      j.parent ? h("div", { "data-testid": "flow-parent" }, "Parent: ", link(j.parent)) : null,
      children.length ? h("div", { "data-testid": "flow-children" },
        `Children (${children.length}):`,
        h("ul", { class: "tree" }, ...shown.map((c) => {
          const state = childStates.get(`${c.queue}/${c.id}`);
          return h("li", {}, link(c), " ", state ? badge(state) : h("span", { class: "muted" }, "gone"));
        })),
        children.length > shown.length ? h("div", { class: "muted small" }, `and ${children.length - shown.length} more`) : null) : null,
      j.batch ? h("div", { "data-testid": "batch" }, `Batch ${j.batch}: `,
        batch ? `${batch.completed} succeeded, ${batch.failed} failed, ${batch.pending} pending of ${batch.total} · ${batch.state}` : "—") : null);
  }

  /** A failed job's error is the job's; any other job's error was left by an earlier attempt
   * and is shown as that, the last failed attempt, not as the job's error. */
  function errorPane(j: Job): HTMLElement | null {
    if (!j.error) return null;
    if (j.state === "failed") return pane("Error", h("pre", { class: "error-text", "data-testid": "job-error" }, j.error));
    const last = j.attempts[j.attempts.length - 1];
    return pane(last?.attempt ? `Last failed attempt (attempt ${last.attempt})` : "Last failed attempt",
      h("pre", { class: "earlier-error", "data-testid": "last-failed-attempt" }, j.error));
  }

  function notFound(message: string): void {
    replace(head, h("a", { href: `#/queues/${enc}`, class: "muted" }, `${queue} /`),
      h("h1", { "data-testid": "job-title" }, h("span", { class: "mono" }, `#${id}`)));
    replace(actions);
    replace(body, h("div", { class: "card", "data-testid": "job-missing" },
      h("h2", {}, "No such job"),
      h("p", {}, message),
      h("p", {}, "It may have been removed, cleaned or trimmed by the queue's retention. ",
        h("a", { href: `#/queues/${enc}`, "data-testid": "back-to-queue" }, `Back to queue ${queue}`))));
  }

  async function refresh(): Promise<void> {
    try {
      job = await api.job(queue, id);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        job = null;
        return notFound(err.code === "queue_not_found" ? err.message : `Queue ${queue} has no job #${id}.`);
      }
      throw err;
    }
    // The children's states (at most CHILDREN_SHOWN reads) and the batch, alongside.
    const kids = (job.children ?? []).slice(0, CHILDREN_SHOWN);
    const [states, found] = await Promise.all([
      Promise.all(kids.map((c) => api.job(c.queue, c.id).then((k) => k.state as string, () => null))),
      job.batch ? api.batch(queue, job.batch).catch(() => null) : Promise.resolve(null),
    ]);
    childStates = new Map(kids.flatMap((c, i) => (states[i] ? [[`${c.queue}/${c.id}`, states[i] as string]] : [])));
    batch = found;
    // Keep an open traceback open across refreshes.
    const open = new Set([...body.querySelectorAll("details[open] summary")].map((s) => s.textContent));
    render(job);
    for (const d of body.querySelectorAll("details")) {
      if (open.has(d.querySelector("summary")?.textContent ?? "")) d.open = true;
    }
  }

  return { el, refresh, events: streams.job(queue, id) };
}
