// The dashboard's only way to the server: the JSON API, with relative URLs (works under any
// mount path). Errors come back as {"error": {"code", "message"}}.

export const STATES = ["waiting", "active", "delayed", "completed", "failed"] as const;
export type State = (typeof STATES)[number];
export type Counts = Record<State, number>;

export interface QueueSummary {
  name: string;
  counts: Counts;
  paused: boolean;
  workers: number;
  busy: number;
  oldest_waiting_ms: number | null;
}
export interface Percentiles { count: number; p50: number | null; p95: number | null; p99: number | null }
export interface MetricsSummary {
  completed: number; failed: number; retried: number; per_minute: number;
  wait: Percentiles; run: Percentiles;
}
export interface Metrics {
  range: string; step_seconds: number; now: number; timestamps: number[];
  series: Record<string, (number | null)[]>; summary: MetricsSummary;
}
export interface Worker {
  id: string; host: string; pid: number; queues: string[]; concurrency: number; busy: number;
  processed: number; failed: number; started_at: number | null; version: string | null;
  last_heartbeat: number;
}
export interface QueueDetail {
  name: string; counts: Counts; paused: boolean; workers: Worker[];
  oldest_waiting_ms: number | null; metrics: MetricsSummary;
}
export interface JobSummary {
  id: string; name: string; state: State; priority: number; attempts: number;
  attempts_made: number; progress: unknown; data_preview: string; error: string | null;
  created_at: number | null; run_at: number | null; started_at: number | null;
  finished_at: number | null;
}
export interface JobPage {
  jobs: JobSummary[]; total: number; page: number; size: number; pages: number;
  truncated: boolean; scanned: number | null;
}
export interface Attempt {
  attempt?: number; error?: string; traceback?: string | null; worker?: string; at?: number;
  duration_ms?: number;
}
export interface Job {
  id: string; queue: string; name: string; data: unknown; state: State;
  options: Record<string, unknown>; attempts_made: number; stalls: number; progress: unknown;
  result: unknown; error: string | null; attempts: Attempt[]; logs: string[];
  timeline: { event: string; at: number; detail?: string | null }[];
  created_at: number | null; queued_at: number | null; run_at: number | null;
  started_at: number | null; finished_at: number | null; worker: string | null;
  wait_ms: number | null; run_ms: number | null; decode_error: string | null;
}
export interface Config {
  version: string; auth: string; read_only: boolean; prefix: string; redis: string;
  poll_seconds: number[]; ranges: string[];
}

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, headers: { accept: "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach the dashboard server (${String(err)})`);
  }
  const text = await res.text();
  let payload: unknown = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (!res.ok) {
    const e = (payload as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(res.status, e?.code ?? "http_error", e?.message ?? `HTTP ${res.status}`);
  }
  return payload as T;
}

const q = (name: string) => `api/queues/${encodeURIComponent(name)}`;
const j = (queue: string, id: string) => `${q(queue)}/jobs/${encodeURIComponent(id)}`;

export const api = {
  config: () => request<Config>("GET", "api/config"),
  login: (body: Record<string, string>) => request<{ ok: boolean }>("POST", "api/login", body),
  logout: () => request<{ ok: boolean }>("POST", "api/logout"),
  queues: () => request<{ queues: QueueSummary[] }>("GET", "api/queues"),
  queue: (name: string) => request<QueueDetail>("GET", q(name)),
  jobs: (name: string, params: Record<string, string | number>) => {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined) search.set(k, String(v));
    return request<JobPage>("GET", `${q(name)}/jobs?${search}`);
  },
  job: (queue: string, id: string) => request<Job>("GET", j(queue, id)),
  action: (queue: string, id: string, action: "retry" | "promote" | "cancel") =>
    request<{ ok: boolean }>("POST", `${j(queue, id)}/${action}`),
  remove: (queue: string, id: string) => request<{ ok: boolean }>("DELETE", j(queue, id)),
  bulk: (queue: string, action: string, ids: string[]) =>
    request<{ done: number; results: Record<string, { ok: boolean; message?: string }> }>(
      "POST", `${q(queue)}/jobs/bulk`, { action, ids }),
  pause: (queue: string, paused: boolean) =>
    request<{ ok: boolean }>("POST", `${q(queue)}/${paused ? "pause" : "resume"}`),
  retryAll: (queue: string, state: string) =>
    request<{ count: number }>("POST", `${q(queue)}/retry-all`, { state }),
  clean: (queue: string, state: string) =>
    request<{ count: number }>("POST", `${q(queue)}/clean`, { state }),
  metrics: (queue: string | null, range: string) =>
    request<Metrics>("GET", queue ? `${q(queue)}/metrics?range=${range}` : `api/metrics?range=${range}`),
  workers: () => request<{ workers: Worker[] }>("GET", "api/workers"),
};
