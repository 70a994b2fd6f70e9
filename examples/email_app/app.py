"""The demo's web app: a tiny Starlette site that sends emails through Conveyor.

    GET  /send-email?to=...&title=...&body=...   enqueue an email job, answer {"id": ...}
                       (a browser, asking for text/html, is sent on to the job's page: 303)
    POST /send-email   {"to": ..., "title": ..., "body": ...}
    GET  /jobs/{id}    a page that follows the job live (state, progress, log lines)
    GET  /jobs/{id}.json

Run it on its own (from this folder) with ``uvicorn app:app --port 3000`` next to
``conveyor worker tasks:queue``; ``conveyor demo`` runs both for you.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from tasks import EMAIL_OPTIONS
from tasks import queue as default_queue

from conveyor import Queue


def create_app(queue: Queue = default_queue, dashboard_url: str | None = None) -> Starlette:
    async def enqueue(fields: dict[str, Any], browser: bool = False) -> Response:
        to = str(fields.get("to") or "someone@example.com")
        if "@" not in to:
            return JSONResponse({"error": f"{to!r} is not an email address"}, status_code=400)
        data = {
            "to": to,
            "title": str(fields.get("title") or "Hello from Conveyor"),
            "body": str(fields.get("body") or "This email was sent by a background job."),
        }
        job = await queue.add("email", data, **EMAIL_OPTIONS)
        if browser:
            return RedirectResponse(f"/jobs/{job.id}", status_code=303)
        return JSONResponse(
            {"id": job.id, "queue": queue.name, "state": job.state, "watch": f"/jobs/{job.id}"},
            status_code=201,
        )

    async def send_email_get(request: Request) -> Response:
        # A browser's address bar asks for text/html; curl (*/*) and scripts get JSON.
        browser = "text/html" in request.headers.get("accept", "")
        return await enqueue(dict(request.query_params), browser=browser)

    async def send_email_post(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "send a JSON object"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "send a JSON object"}, status_code=400)
        return await enqueue(body)

    async def job_json(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        job = await queue.get_job(job_id)
        if job is None:
            return JSONResponse({"error": f"no job {job_id}"}, status_code=404)
        out = job.to_dict()
        out["logs"] = await queue.job_logs(job_id)
        out["attempt_errors"] = [a.get("error") for a in await queue.job_attempts(job_id)]
        return JSONResponse(out)

    async def job_page(request: Request) -> Response:
        job_id = html.escape(request.path_params["job_id"])
        return HTMLResponse(JOB_PAGE.replace("{job_id}", job_id).replace("{dashboard}", links()))

    async def index(request: Request) -> Response:
        return HTMLResponse(INDEX_PAGE.replace("{dashboard}", links()))

    def links() -> str:
        if not dashboard_url:
            return ""
        url = html.escape(dashboard_url)
        return f'<p>Watch every queue in the <a href="{url}">dashboard</a>.</p>'

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await queue.close()

    return Starlette(
        routes=[
            Route("/", index),
            Route("/send-email", send_email_get, methods=["GET"]),
            Route("/send-email", send_email_post, methods=["POST"]),
            Route("/jobs/{job_id}.json", job_json),
            Route("/jobs/{job_id}", job_page),
        ],
        lifespan=lifespan,
    )


INDEX_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Conveyor demo: send an email</title>
<style>body{font:16px system-ui;max-width:40em;margin:3em auto}input,textarea{width:100%}
label{display:block;margin-top:1em}</style></head>
<body><h1>Send an email (in the background)</h1>
<form id="f"><label>To <input name="to" value="ada@example.com"></label>
<label>Title <input name="title" value="Welcome!"></label>
<label>Body <textarea name="body">Thanks for signing up.</textarea></label>
<p><button>Send</button></p></form>
<p>Or from a terminal: <code>curl 'http://HOST/send-email?to=ada@example.com'</code></p>
{dashboard}
<script>
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const body = Object.fromEntries(new FormData(e.target));
  const r = await fetch("/send-email", {method: "POST", body: JSON.stringify(body),
                                        headers: {"content-type": "application/json"}});
  const job = await r.json();
  location.href = job.watch;
};
document.querySelector("code").textContent =
  "curl '" + location.origin + "/send-email?to=ada@example.com'";
</script></body></html>
"""

JOB_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Email job {job_id}</title>
<style>body{font:16px system-ui;max-width:40em;margin:3em auto}
progress{width:100%;height:1.5em}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}
.failed{color:#b00}.completed{color:#080}</style></head>
<body><h1>Email job {job_id}</h1>
<p>State: <strong id="state">loading</strong> <span id="attempt"></span></p>
<progress id="progress" max="100" value="0"></progress>
<h3>Log</h3><pre id="logs"></pre>
<h3>Failed attempts</h3><pre id="errors">none</pre>
<p><a href="/">Send another</a></p>{dashboard}
<script>
async function poll() {
  const r = await fetch("/jobs/{job_id}.json");
  if (!r.ok) { document.getElementById("state").textContent = "not found"; return; }
  const job = await r.json();
  const state = document.getElementById("state");
  state.textContent = job.state;
  state.className = job.state;
  // The words of the job's log ("attempt N of M"): the attempt running or next to run, or,
  // once the job is finished, the last one made.
  const finished = job.state === "completed" || job.state === "failed";
  const attempt = finished ? job.attempts_made : job.attempts_made + 1;
  const words = "attempt " + attempt + " of " + job.options.attempts;
  document.getElementById("attempt").textContent =
    job.state === "active" ? "(" + words + ")"
    : job.state === "completed" ? "(done in " + words + ")"
    : job.state === "failed" ? "(gave up after " + words + ")"
    : "(" + words + " next)";
  document.getElementById("progress").value = job.progress || 0;
  document.getElementById("logs").textContent = job.logs.join("\\n");
  document.getElementById("errors").textContent = job.attempt_errors.join("\\n") || "none";
  if (job.state !== "completed" && job.state !== "failed") setTimeout(poll, 300);
}
poll();
</script></body></html>
"""

app = create_app()
