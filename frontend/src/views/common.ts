import type { Counts, Range, State } from "../api";
import { ApiError, STATES } from "../api";
import { h } from "../dom";

export interface View {
  el: HTMLElement;
  refresh(): Promise<void>;
  /** The server-sent event stream whose messages mean "refresh now" (polling is the fallback). */
  events?: string;
  destroy?(): void;
  restyle?(): void;
}

export interface App {
  refresh(): Promise<void>;
  showError(err: unknown): void;
  notify(message: string): void;
  readonly readOnly: boolean;
  /** The chart ranges the server offers; the first is the default. */
  readonly ranges: readonly Range[];
}

/** "15m" -> "Last 15 minutes", "1h" -> "Last hour", "7d" -> "Last 7 days". */
export function rangeLabel(range: Range): string {
  const m = /^(\d+)([mhd])$/.exec(range);
  if (!m) return range;
  const count = Number(m[1]);
  const unit = { m: "minute", h: "hour", d: "day" }[m[2] as "m" | "h" | "d"];
  return count === 1 ? `Last ${unit}` : `Last ${count} ${unit}s`;
}

export function badge(state: State | string): HTMLElement {
  return h("span", { class: `badge s-${state}`, "data-testid": "state" }, state);
}

export function progressBar(progress: unknown): HTMLElement | null {
  const value = typeof progress === "number" ? progress
    : typeof progress === "object" && progress !== null && typeof (progress as { percent?: unknown }).percent === "number"
      ? (progress as { percent: number }).percent : null;
  if (value === null) return null;
  const pct = Math.max(0, Math.min(100, value));
  const bar = h("div", { class: "progress", role: "progressbar", "aria-label": `progress ${Math.round(pct)}%`, "aria-valuenow": pct, "aria-valuemin": 0, "aria-valuemax": 100 },
    h("div", { class: "progress-fill" }));
  (bar.firstElementChild as HTMLElement).style.width = `${pct}%`;
  return bar;
}

/** States whose count column a narrow screen drops first (waiting, active and failed stay). */
export const NARROW_HIDDEN: ReadonlySet<State> = new Set<State>(["delayed", "completed"]);

export function countsCells(queue: string, counts: Counts): HTMLElement[] {
  return STATES.map((s: State) =>
    h("td", { class: `num c-${s}${counts[s] ? "" : " zero"}${NARROW_HIDDEN.has(s) ? " narrow-hide" : ""}`, "data-testid": `count-${s}` },
      h("a", { href: `#/queues/${encodeURIComponent(queue)}/${s}` }, counts[s].toLocaleString())));
}

/** A modal confirm dialog (a real <dialog>, no window.confirm). */
export function confirmDialog(title: string, message: string, action: string, danger = false): Promise<boolean> {
  return new Promise((resolve) => {
    const ok = h("button", { class: danger ? "danger" : "primary", "data-testid": "confirm-ok" }, action);
    const cancel = h("button", { class: "ghost", "data-testid": "confirm-cancel" }, "Cancel");
    const dialog = h("dialog", { class: "confirm", "data-testid": "confirm" },
      h("h3", {}, title), h("p", {}, message), h("div", { class: "row end" }, cancel, ok));
    const done = (value: boolean) => { dialog.close(); dialog.remove(); resolve(value); };
    ok.addEventListener("click", () => done(true));
    cancel.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", () => done(false));
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** Run an action, report its error in the banner, then refresh. */
export async function act(app: App, fn: () => Promise<unknown>, success?: string): Promise<void> {
  try {
    await fn();
    if (success) app.notify(success);
  } catch (err) {
    app.showError(err instanceof ApiError ? err : new Error(String(err)));
  }
  await app.refresh();
}

export function empty(text: string): HTMLElement {
  return h("div", { class: "empty" }, text);
}

/** The tab's title: what the view shows, the counts worth a glance from another tab first. */
export function setTitle(what: string, counts?: Pick<Counts, "waiting" | "failed">): void {
  const tally = counts ? `(${counts.waiting.toLocaleString()} waiting${counts.failed ? `, ${counts.failed.toLocaleString()} failed` : ""}) ` : "";
  document.title = `${tally}${what} · Conveyor`;
}
