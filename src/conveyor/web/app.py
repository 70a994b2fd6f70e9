"""``create_app``: the JSON API, ``/metrics`` and the dashboard as one Starlette ASGI app.

Mount it anywhere (``app.mount("/conveyor", create_app(url=...))``) or serve it standalone
with ``conveyor dashboard``. The dashboard is a static TypeScript build that only calls the API
with relative URLs and hash routes, so it works under any mount path.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import errors
from ..admin import RANGES, Admin
from ..backoff import Backoff
from ..settings import Settings
from ..version import __version__
from .errors import web_error
from .limits import MAX_BODY, BodyLimitMiddleware, BodyTooLarge
from .openapi import build_spec
from .prometheus import render_metrics
from .security import (
    Authenticator,
    SecurityConfig,
    SecurityHeadersMiddleware,
    WebError,
)
from .sessions import SESSION_COOKIE, SESSION_SECONDS

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).parent / "static" / "dist"
#: Upper bound of delay/timeout/ttl accepted over HTTP (ten years).
MAX_SECONDS = 10 * 365 * 24 * 3600
_STATES = ("waiting", "delayed", "active", "completed", "failed")
_NOT_BUILT = b"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Conveyor</title></head><body><h1>Conveyor</h1><p>The dashboard front end is not built.
Run <code>bash scripts/setup</code> (or <code>npm ci &amp;&amp; npm run build</code> in
<code>frontend/</code>). The JSON API is at <a href="api/queues">api/queues</a>.</p></body></html>
"""

Handler = Callable[[Request], Awaitable[Any]]


class ORJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def _error(status: int, code: str, message: str) -> Response:
    return ORJSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class _Api:
    """Route handlers; each is wrapped by ``endpoint`` for auth, CSRF and error mapping."""

    def __init__(self, admin: Admin, security: SecurityConfig) -> None:
        self.admin = admin
        self.security = security

    def endpoint(
        self, handler: Handler, *, write: bool = False, public: bool = False, csrf: bool = False
    ) -> Handler:
        """``write``: changes data (CSRF check, refused in read-only mode); ``csrf``: the CSRF
        check alone (login, logout)."""

        async def wrapped(request: Request) -> Response:
            try:
                if write or csrf:
                    self.security.check_csrf(request)
                if not public:
                    await self.security.authorize(request)
                if write and self.security.read_only:
                    raise WebError(403, "read_only", "the dashboard is in read-only mode")
                result = await handler(request)
            except Exception as exc:
                err = web_error(exc)
                response = _error(err.status, err.code, err.message)
                response.headers.update(err.headers)
                return response
            if isinstance(result, Response):
                return result
            return ORJSONResponse(result)

        return wrapped

    # -- request helpers -----------------------------------------------------------------------

    @staticmethod
    async def body(request: Request, required: bool = True) -> dict[str, Any]:
        raw = await request.body()
        if len(raw) > MAX_BODY:  # BodyLimitMiddleware refuses it sooner when it is in place
            raise BodyTooLarge(MAX_BODY)
        if not raw.strip():
            if required:
                raise WebError(400, "bad_request", "a JSON object body is required")
            return {}
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise WebError(415, "unsupported_media_type", "send the body as application/json")
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise WebError(400, "bad_request", f"body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise WebError(400, "bad_request", "the body must be a JSON object")
        return value

    @staticmethod
    def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise WebError(400, "bad_request", f"{name} must be an integer") from None
        if not low <= value <= high:
            raise WebError(400, "bad_request", f"{name} must be between {low} and {high}")
        return value

    @staticmethod
    def choice(request: Request, name: str, options: tuple[str, ...], default: str) -> str:
        value = request.query_params.get(name) or default
        if value not in options:
            raise WebError(400, "bad_request", f"{name} must be one of {', '.join(options)}")
        return value

    @staticmethod
    def text_param(request: Request, name: str) -> str | None:
        value = request.query_params.get(name)
        if value is not None and len(value) > 256:
            raise WebError(400, "bad_request", f"{name} is longer than 256 characters")
        return value or None

    @staticmethod
    def queue_name(request: Request) -> str:
        return str(request.path_params["queue"])

    @staticmethod
    def job_id(request: Request) -> str:
        job_id = str(request.path_params["id"])
        if not job_id or len(job_id) > 256:
            raise WebError(400, "bad_request", "job id must be 1-256 characters")
        return job_id

    # -- meta ----------------------------------------------------------------------------------

    async def _may_read(self, request: Request) -> bool:
        try:
            await self.security.authorize(request)
        except WebError:
            return False
        return True

    async def health(self, request: Request) -> Response:
        # Anyone may ask; only a client that may read data learns hosts and queue names.
        detailed = await self._may_read(request)
        try:
            losses = await self.admin.data_losses()
        except (errors.ConnectionError, errors.CommandRefused) as exc:  # either way: not usable
            message = str(exc) if detailed else "Redis is unavailable"
            return _error(503, "redis_unavailable", message)
        if losses and not detailed:
            return _error(503, "data_loss", "Redis lost queued jobs: log in for the details")
        if losses:
            # Redis answers, but it lost queued jobs: never report that as healthy.
            names = ", ".join(sorted({loss["queue"] for loss in losses}))
            message = (
                f"Redis lost the data of queue(s) {names} (restarted without persistence, "
                "flushed, failed over to an empty replica, or obliterated): jobs queued before "
                "are gone. Acknowledge with Admin.acknowledge_data_loss(queue) once handled."
            )
            body = {
                "error": {"code": "data_loss", "message": message},
                "status": "data_loss",
                "redis": "ok",
                "data_loss": losses,
                "version": __version__,
            }
            return ORJSONResponse(body, status_code=503)
        if not detailed:
            return ORJSONResponse({"status": "ok"})
        return ORJSONResponse({"status": "ok", "redis": "ok", "version": __version__})

    async def config(self, request: Request) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": __version__,
            "auth": self.security.kind,
            "read_only": self.security.read_only,
            "poll_seconds": [2, 3, 5, 10],
            "ranges": list(RANGES),
        }
        if await self._may_read(request):  # where the data lives is not for everyone
            config["prefix"] = self.admin.settings.prefix
            config["redis"] = self.admin.settings.redacted_url()
        return config

    async def login(self, request: Request) -> Response:
        body = await self.body(request)
        values = {k: body.get(k) for k in ("token", "username", "password")}
        if any(v is not None and not isinstance(v, str) for v in values.values()):
            raise WebError(400, "bad_request", "token, username and password must be strings")
        if self.security.is_open:
            return ORJSONResponse({"ok": True})
        cookie = self.security.login(
            request, values["token"], values["username"], values["password"]
        )
        response = ORJSONResponse({"ok": True})
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=SESSION_SECONDS,
            path=request.scope.get("root_path") or "/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    async def logout(self, request: Request) -> Response:
        self.security.logout(request)
        response = ORJSONResponse({"ok": True})
        response.delete_cookie(SESSION_COOKIE, path=request.scope.get("root_path") or "/")
        return response

    async def openapi(self, request: Request) -> dict[str, Any]:
        return build_spec()

    async def prometheus(self, request: Request) -> Response:
        body, content_type = render_metrics(await self.admin.prometheus_snapshot())
        return Response(body, media_type=content_type)

    # -- reads ---------------------------------------------------------------------------------

    async def queues(self, request: Request) -> dict[str, Any]:
        return {"queues": await self.admin.overview()}

    async def queue(self, request: Request) -> dict[str, Any]:
        return await self.admin.queue_info(self.queue_name(request))

    async def jobs(self, request: Request) -> dict[str, Any]:
        page = await self.admin.list_jobs(
            self.queue_name(request),
            self.choice(request, "state", _STATES, "waiting"),
            page=self.int_param(request, "page", 1, 1, 100_000),
            size=self.int_param(request, "size", 20, 1, 200),
            job_name=self.text_param(request, "name"),
            text=self.text_param(request, "q"),
            sort=self.choice(request, "sort", ("newest", "oldest"), "newest"),
        )
        return page.to_dict()

    async def job(self, request: Request) -> dict[str, Any]:
        return await self.admin.job_detail(self.queue_name(request), self.job_id(request))

    async def metrics(self, request: Request) -> dict[str, Any]:
        name = self.queue_name(request)
        await self.admin.require(name)
        return await self.admin.metrics([name], self.choice(request, "range", tuple(RANGES), "1h"))

    async def all_metrics(self, request: Request) -> dict[str, Any]:
        return await self.admin.metrics(None, self.choice(request, "range", tuple(RANGES), "1h"))

    async def workers(self, request: Request) -> dict[str, Any]:
        return {"workers": await self.admin.workers()}

    # -- writes --------------------------------------------------------------------------------

    async def add_job(self, request: Request) -> Response:
        name = self.queue_name(request)
        self.admin.queue(name)  # validate the name before reading the body
        body = await self.body(request)
        unknown = set(body) - {"name", "data", "options"}
        if unknown:
            raise WebError(400, "bad_request", f"unknown fields {sorted(unknown)}")
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise WebError(400, "bad_request", "options must be an object")
        options = _job_options(options)
        job_name = body.get("name")
        if not isinstance(job_name, str):
            raise WebError(400, "bad_request", "name must be a string")
        job = await self.admin.add(name, job_name, body.get("data"), options)
        return ORJSONResponse(
            {"id": job.id, "state": job.state.value, "queue": name}, status_code=201
        )

    async def job_action(self, request: Request) -> dict[str, Any]:
        action = request.url.path.rsplit("/", 1)[-1]
        await self.admin.act(self.queue_name(request), action, self.job_id(request))
        return {"ok": True}

    async def delete_job(self, request: Request) -> dict[str, Any]:
        await self.admin.act(self.queue_name(request), "remove", self.job_id(request))
        return {"ok": True}

    async def bulk(self, request: Request) -> dict[str, Any]:
        name = self.queue_name(request)
        await self.admin.require(name)
        body = await self.body(request)
        ids, action = body.get("ids"), body.get("action")
        if set(body) - {"ids", "action"}:
            raise WebError(400, "bad_request", "the body takes 'action' and 'ids' only")
        if not isinstance(action, str) or not isinstance(ids, list) or len(ids) > 1000:
            raise WebError(400, "bad_request", "give an action and a list of at most 1000 ids")
        if not all(isinstance(i, str) and 0 < len(i) <= 256 for i in ids):
            raise WebError(400, "bad_request", "ids must be strings of 1-256 characters")
        return await self.admin.bulk(name, action, ids)

    async def pause(self, request: Request) -> dict[str, Any]:
        queue = await self.admin.require(self.queue_name(request))
        if request.url.path.endswith("/pause"):
            await queue.pause()
        else:
            await queue.resume()
        return {"ok": True}

    async def _state_body(self, request: Request, default: str) -> tuple[str, float]:
        body = await self.body(request, required=False)
        if set(body) - {"state", "older_than"}:
            raise WebError(400, "bad_request", "the body takes 'state' and 'older_than' only")
        state = body.get("state", default)
        if state not in ("waiting", "delayed", "completed", "failed"):
            raise WebError(
                400, "bad_request", "state must be waiting, delayed, completed or failed"
            )
        older = body.get("older_than", 0)
        if not isinstance(older, int | float) or isinstance(older, bool) or not 0 <= older < 1e12:
            raise WebError(400, "bad_request", "older_than must be a number of seconds >= 0")
        return state, float(older)

    async def retry_all(self, request: Request) -> dict[str, Any]:
        name = self.queue_name(request)
        await self.admin.require(name)
        state, _ = await self._state_body(request, "failed")
        return {"count": await self.admin.retry_all(name, state)}

    async def clean(self, request: Request) -> dict[str, Any]:
        name = self.queue_name(request)
        await self.admin.require(name)
        state, older = await self._state_body(request, "completed")
        return {"count": await self.admin.clean(name, state, older)}


_OPTIONS = frozenset(
    {"attempts", "backoff", "delay", "run_at", "priority", "job_id", "timeout", "ttl"}
)
_BACKOFF_FIELDS = frozenset({"kind", "delay", "max_delay", "jitter"})


def _job_options(options: dict[str, Any]) -> dict[str, Any]:
    """The options of ``POST /api/queues/{q}/jobs``, checked and turned into ``Queue.add``'s
    (``backoff`` into a ``Backoff``, an ISO 8601 ``run_at`` into epoch seconds); the core checks
    the rest (ranges, delay with run_at) and its errors become 400s too."""
    if set(options) - _OPTIONS:
        raise WebError(400, "bad_request", f"unknown options {sorted(set(options) - _OPTIONS)}")
    out = dict(options)
    for key in ("delay", "timeout", "ttl"):
        value = options.get(key)
        if value is not None and not _number_between(value, 0, MAX_SECONDS):
            raise WebError(400, "bad_request", f"{key} must be 0..{MAX_SECONDS} seconds")
    if options.get("backoff") is not None:
        out["backoff"] = _backoff(options["backoff"])
    if options.get("run_at") is not None:
        out["run_at"] = _run_at(options["run_at"])
    return out


def _number_between(value: Any, low: float, high: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high


def _backoff(raw: Any) -> Backoff:
    example = '{"kind": "exponential", "delay": 1, "max_delay": 3600, "jitter": 0.2}'
    if not isinstance(raw, dict):
        raise WebError(400, "bad_request", f"options.backoff must be an object like {example}")
    if set(raw) - _BACKOFF_FIELDS:
        unknown = sorted(set(raw) - _BACKOFF_FIELDS)
        raise WebError(400, "bad_request", f"unknown options.backoff fields {unknown}")
    kind = raw.get("kind")
    if kind not in ("fixed", "exponential"):
        raise WebError(400, "bad_request", "options.backoff.kind must be 'fixed' or 'exponential'")
    if kind == "fixed" and "delay" not in raw:
        raise WebError(400, "bad_request", "options.backoff.delay is required for kind 'fixed'")
    delay = raw.get("delay", 1.0)
    if not _number_between(delay, 0, MAX_SECONDS):
        raise WebError(400, "bad_request", f"options.backoff.delay must be 0..{MAX_SECONDS} s")
    # Like Backoff.exponential: capped at an hour unless max_delay says otherwise (null: none).
    max_delay = raw.get("max_delay", 3600.0 if kind == "exponential" else None)
    if max_delay is not None and not _number_between(max_delay, 0, MAX_SECONDS):
        raise WebError(
            400, "bad_request", f"options.backoff.max_delay must be 0..{MAX_SECONDS} s or null"
        )
    jitter = raw.get("jitter", 0.0)
    if not _number_between(jitter, 0, 1):
        raise WebError(400, "bad_request", "options.backoff.jitter must be between 0 and 1")
    return Backoff(kind, float(delay), None if max_delay is None else float(max_delay), jitter)


def _run_at(raw: Any) -> float:
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return float(raw)  # epoch seconds; the core checks the range
    if isinstance(raw, str) and len(raw) <= 64:
        try:
            when = dt.datetime.fromisoformat(raw.strip().upper())
        except ValueError:
            pass
        else:
            if when.tzinfo is None:
                raise WebError(
                    400,
                    "bad_request",
                    f"options.run_at {raw!r} has no timezone; add one, e.g. "
                    "2030-01-01T09:00:00Z or 2030-01-01T09:00:00+02:00",
                )
            with contextlib.suppress(OverflowError, ValueError):
                return when.timestamp()
    raise WebError(
        400,
        "bad_request",
        f"options.run_at must be epoch seconds or an ISO 8601 time with a timezone "
        f"(e.g. 2030-01-01T09:00:00Z), not {str(raw)[:64]!r}",
    )


async def _index(request: Request) -> Response:
    index = STATIC_DIR / "index.html"
    if index.is_file():
        return FileResponse(index, headers={"cache-control": "no-cache"})
    return Response(_NOT_BUILT, media_type="text/html")


def create_app(
    url: str | None = None,
    *,
    settings: Settings | None = None,
    prefix: str | None = None,
    token: str | None = None,
    username: str | None = None,
    password: str | None = None,
    authenticate: Authenticator | None = None,
    read_only: bool = False,
    allowed_hosts: tuple[str, ...] = (),
    secret_key: bytes | None = None,
) -> Starlette:
    """The Conveyor dashboard + JSON API as an ASGI app.

    Without ``token``/``username``+``password``/``authenticate`` the app serves loopback clients
    only. ``authenticate(request) -> bool`` (sync or async) lets a host app's own login decide.
    """
    overrides: dict[str, Any] = {"prefix": prefix} if prefix else {}
    admin = Admin(url, settings=settings, **overrides)
    security = SecurityConfig(
        token=token,
        username=username,
        password=password,
        authenticate=authenticate,
        read_only=read_only,
        allowed_hosts=tuple(allowed_hosts),
    )
    if secret_key is not None:
        security.secret_key = secret_key
    api = _Api(admin, security)
    ep = api.endpoint

    def route(path: str, handler: Handler, methods: list[str], **kw: bool) -> Route:
        return Route(path, ep(handler, **kw), methods=methods)

    q = "/api/queues/{queue}"
    routes: list[Any] = [
        route("/api/health", api.health, ["GET"], public=True),
        route("/api/config", api.config, ["GET"], public=True),
        route("/api/login", api.login, ["POST"], public=True, csrf=True),
        route("/api/logout", api.logout, ["POST"], public=True, csrf=True),
        route("/api/openapi.json", api.openapi, ["GET"]),
        route("/metrics", api.prometheus, ["GET"]),
        route("/api/metrics", api.all_metrics, ["GET"]),
        route("/api/workers", api.workers, ["GET"]),
        route("/api/queues", api.queues, ["GET"]),
        route(q, api.queue, ["GET"]),
        route(f"{q}/metrics", api.metrics, ["GET"]),
        route(f"{q}/jobs", api.jobs, ["GET"]),
        route(f"{q}/jobs", api.add_job, ["POST"], write=True),
        route(f"{q}/jobs/bulk", api.bulk, ["POST"], write=True),
        route(q + "/jobs/{id}", api.job, ["GET"]),
        route(q + "/jobs/{id}", api.delete_job, ["DELETE"], write=True),
    ]
    for action in ("retry", "promote", "cancel"):
        routes.append(route(q + "/jobs/{id}/" + action, api.job_action, ["POST"], write=True))
    for action in ("pause", "resume"):
        routes.append(route(f"{q}/{action}", api.pause, ["POST"], write=True))
    routes.append(route(f"{q}/retry-all", api.retry_all, ["POST"], write=True))
    routes.append(route(f"{q}/clean", api.clean, ["POST"], write=True))
    routes.append(Route("/", _index, methods=["GET"]))
    routes.append(
        Mount("/assets", app=StaticFiles(directory=STATIC_DIR / "assets", check_dir=False))
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await admin.close()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        codes = {404: "not_found", 405: "method_not_allowed"}
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), str(exc.detail))

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
        # Outermost first: the body limit's 413 gets the security headers too.
        middleware=[Middleware(SecurityHeadersMiddleware), Middleware(BodyLimitMiddleware)],
    )
    app.state.admin = admin
    app.state.security = security
    return app
