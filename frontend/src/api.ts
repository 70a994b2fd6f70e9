// The dashboard's only way to the server: the JSON API, with relative URLs (works under any
// mount path). Errors come back as {"error": {"code", "message"}}. The types are generated from
// the API's OpenAPI document at build time (src/generated/, from src/openapi.json).
import {
  type components,
  configRangesValues,
  jobStateValues,
  pathsApiQueuesQueueJobsGetParametersQuerySortValues as sortValues,
  type paths,
} from "./generated/api-schema";

type Schemas = components["schemas"];

export const STATES = jobStateValues;
/** The chart ranges as the API document lists them; the server's /api/config serves the same. */
export const DOCUMENTED_RANGES: readonly Range[] = configRangesValues;
export type State = Schemas["JobState"];
export type Counts = Schemas["Counts"];
export type QueueSummary = Schemas["QueueSummary"];
export type MetricsSummary = Schemas["MetricsSummary"];
export type Metrics = Schemas["Metrics"];
export type Worker = Schemas["Worker"];
export type WorkerNow = Schemas["WorkerNow"];
export type QueueDetail = Schemas["QueueDetail"];
export type JobSummary = Schemas["JobSummary"];
export type JobPage = Schemas["JobPage"];
export type SearchPage = Schemas["SearchPage"];
export type GroupPage = Schemas["GroupPage"];
export type Batch = Schemas["Batch"];
export type Job = Schemas["Job"];
export type Config = Schemas["Config"];
export type Ok = Schemas["Ok"];
export type BulkResult = Schemas["BulkResult"];
export type Login = Schemas["Login"];
export type BulkAction = Schemas["Bulk"]["action"];
/** A state whose jobs can be cleaned (every state but active). */
export type CleanableState = NonNullable<Schemas["StateBody"]["state"]>;
export type Range = Schemas["Metrics"]["range"];
type JobQuery = NonNullable<paths["/api/queues/{queue}/jobs"]["get"]["parameters"]["query"]>;
export type Schedule = NonNullable<paths["/api/queues/{queue}/schedules"]["get"]["responses"]["200"]["content"]["application/json"]["schedules"]>[number];
type SearchQuery = NonNullable<paths["/api/queues/{queue}/search"]["get"]["parameters"]["query"]>;

function queryString(params: Record<string, unknown>): URLSearchParams {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined && v !== null) search.set(k, String(v));
  return search;
}
export type Sort = (typeof sortValues)[number];

export class ApiError extends Error {
  /** `retryAfter`: the seconds a 429 asks the client to wait (its Retry-After header). */
  constructor(public status: number, public code: string, message: string, public retryAfter: number | null = null) {
    super(message);
  }
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  // The server refuses a state change that does not prove it comes from a script (no HTML
  // form can set this header).
  if (method !== "GET") headers["x-conveyor-request"] = "1";
  const init: RequestInit = { method, headers, credentials: "same-origin" };
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
    const wait = Number(res.headers.get("retry-after") ?? "NaN");
    throw new ApiError(res.status, e?.code ?? "http_error", e?.message ?? `HTTP ${res.status}`,
      Number.isFinite(wait) && wait > 0 ? wait : null);
  }
  return payload as T;
}

const q = (name: string) => `api/queues/${encodeURIComponent(name)}`;
/** The live event streams (server-sent events; see web/live.py). */
export const streams = {
  all: "api/events",
  queue: (name: string) => `${q(name)}/events`,
  job: (queue: string, id: string) => `${q(queue)}/events?job=${encodeURIComponent(id)}`,
};
const j = (queue: string, id: string) => `${q(queue)}/jobs/${encodeURIComponent(id)}`;

export const api = {
  config: () => request<Config>("GET", "api/config"),
  login: (body: Login) => request<Ok>("POST", "api/login", body),
  logout: () => request<Ok>("POST", "api/logout"),
  queues: () => request<{ queues: QueueSummary[] }>("GET", "api/queues"),
  queue: (name: string) => request<QueueDetail>("GET", q(name)),
  jobs: (name: string, params: JobQuery) => request<JobPage>("GET", `${q(name)}/jobs?${queryString(params)}`),
  /** One bounded slice of a search of every job in a state; go on with its next_cursor. */
  search: (name: string, params: SearchQuery) => {
    return request<SearchPage>("GET", `${q(name)}/search?${queryString(params)}`);
  },
  job: (queue: string, id: string) => request<Job>("GET", j(queue, id)),
  action: (queue: string, id: string, action: "retry" | "promote" | "cancel") =>
    request<Ok>("POST", `${j(queue, id)}/${action}`),
  remove: (queue: string, id: string) => request<Ok>("DELETE", j(queue, id)),
  bulk: (queue: string, action: BulkAction, ids: string[]) =>
    request<BulkResult>("POST", `${q(queue)}/jobs/bulk`, { action, ids }),
  pause: (queue: string, paused: boolean) =>
    request<Ok>("POST", `${q(queue)}/${paused ? "pause" : "resume"}`),
  retryAll: (queue: string, state: "failed" | "delayed") =>
    request<{ count: number }>("POST", `${q(queue)}/retry-all`, { state }),
  clean: (queue: string, state: CleanableState) =>
    request<{ count: number }>("POST", `${q(queue)}/clean`, { state }),
  metrics: (queue: string | null, range: Range) =>
    request<Metrics>("GET", queue ? `${q(queue)}/metrics?range=${range}` : `api/metrics?range=${range}`),
  groups: (queue: string, page: number, size: number) =>
    request<GroupPage>("GET", `${q(queue)}/groups?page=${page}&size=${size}`),
  batch: (queue: string, id: string) => request<Batch>("GET", `${q(queue)}/batches/${encodeURIComponent(id)}`),
  schedules: (queue: string) => request<{ schedules: Schedule[] }>("GET", `${q(queue)}/schedules`),
  scheduleAction: (queue: string, id: string, action: "pause" | "resume" | "trigger") =>
    request<{ ok: boolean }>("POST", `${q(queue)}/schedules/${encodeURIComponent(id)}/${action}`),
  removeSchedule: (queue: string, id: string) =>
    request<{ ok: boolean }>("DELETE", `${q(queue)}/schedules/${encodeURIComponent(id)}`),
  workers: () => request<{ workers: WorkerNow[] }>("GET", "api/workers"),
};
