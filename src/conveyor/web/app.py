"""``create_app``: the JSON API, ``/metrics`` and the dashboard as one Starlette ASGI app.

Mount it anywhere (``app.mount("/conveyor", create_app(url=...))``) or serve it standalone
with ``conveyor dashboard``. The dashboard is a static TypeScript build that only calls the API
with relative URLs and hash routes, so it works under any mount path.
"""

from __future__ import annotations

import contextlib
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
from ..admin import Admin
from ..settings import Settings
from ..version import __version__
from . import workflow_routes
from .contract import (
    BULK,
    JOB_ID,
    JOB_LIST_QUERY,
    LOGIN,
    NEW_JOB,
    POLL_SECONDS,
    RANGE_QUERY,
    SEARCH_QUERY,
    STATE_BODY,
    job_options,
)
from .errors import web_error
from .fields import parse_query
from .flow_routes import flow_routes
from .limits import MAX_BODY, BodyLimitMiddleware, BodyTooLarge
from .live import LiveEvents
from .openapi import build_spec
from .prometheus import render_metrics
from .schedule_routes import schedule_routes
from .security import (
    Authenticator,
    SecurityConfig,
    SecurityHeadersMiddleware,
    WebError,
)
from .sessions import SESSION_COOKIE, SESSION_SECONDS, Revocations

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).parent / "static" / "dist"
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
    def queue_name(request: Request) -> str:
        return str(request.path_params["queue"])

    @staticmethod
    def job_id(request: Request) -> str:
        return str(JOB_ID.parse(str(request.path_params["id"]), "job id"))

    @staticmethod
    def chart_range(request: Request) -> str:
        return str(RANGE_QUERY.parse_query(request.query_params.get(RANGE_QUERY.name)))

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
            "poll_seconds": list(POLL_SECONDS),
            "ranges": list(RANGE_QUERY.enum),
        }
        if await self._may_read(request):  # where the data lives is not for everyone
            config["prefix"] = self.admin.settings.prefix
            config["redis"] = self.admin.settings.redacted_url()
        return config

    async def login(self, request: Request) -> Response:
        given = LOGIN.parse(await self.body(request))
        values = {k: given.get(k) for k in ("token", "username", "password")}
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
        await self.security.logout(request)
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
        query = parse_query(JOB_LIST_QUERY, request.query_params)
        page = await self.admin.list_jobs(
            self.queue_name(request),
            query["state"],
            page=query["page"],
            size=query["size"],
            job_name=query["name"] or None,
            text=query["q"] or None,
            sort=query["sort"],
        )
        return page.to_dict()

    async def search(self, request: Request) -> dict[str, Any]:
        query = parse_query(SEARCH_QUERY, request.query_params)
        found = await self.admin.search_jobs(
            self.queue_name(request),
            query["state"],
            job_name=query["name"] or None,
            text=query["q"] or None,
            cursor=query["cursor"] or None,
            size=query["size"],
            sort=query["sort"],
        )
        return found.to_dict()

    async def job(self, request: Request) -> dict[str, Any]:
        return await self.admin.job_detail(self.queue_name(request), self.job_id(request))

    async def metrics(self, request: Request) -> dict[str, Any]:
        name = self.queue_name(request)
        await self.admin.require(name)
        return await self.admin.metrics([name], self.chart_range(request))

    async def all_metrics(self, request: Request) -> dict[str, Any]:
        return await self.admin.metrics(None, self.chart_range(request))

    async def workers(self, request: Request) -> dict[str, Any]:
        return {"workers": await self.admin.workers(running=True)}

    # -- writes --------------------------------------------------------------------------------

    async def add_job(self, request: Request) -> Response:
        name = self.queue_name(request)
        self.admin.queue(name)  # validate the name before reading the body
        body = NEW_JOB.parse(await self.body(request))
        options = job_options(body.get("options") or {})
        job = await self.admin.add(name, body["name"], body.get("data"), options)
        return ORJSONResponse(
            {
                "id": job.id,
                "state": job.state.value,
                "queue": name,
                "deduplicated": job.deduplicated,
            },
            status_code=201,
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
        body = BULK.parse(await self.body(request))
        return await self.admin.bulk(name, body["action"], body["ids"])

    async def pause(self, request: Request) -> dict[str, Any]:
        queue = await self.admin.require(self.queue_name(request))
        if request.url.path.endswith("/pause"):
            await queue.pause()
        else:
            await queue.resume()
        return {"ok": True}

    async def _state_body(self, request: Request, default: str) -> tuple[str, float]:
        body = STATE_BODY.parse(await self.body(request, required=False))
        return body.get("state", default), float(body.get("older_than", 0))

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
    keyed: dict[str, Any] = {"secret_key": secret_key} if secret_key is not None else {}
    security = SecurityConfig(
        token=token,
        username=username,
        password=password,
        authenticate=authenticate,
        read_only=read_only,
        allowed_hosts=tuple(allowed_hosts),
        **keyed,
    )
    security.revocations = Revocations(admin.redis, admin.settings.prefix)
    api = _Api(admin, security)
    live = LiveEvents(admin)
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
        route("/api/events", live.all_queues_stream, ["GET"]),
        route(f"{q}/events", live.queue_stream, ["GET"]),
        route("/api/queues", api.queues, ["GET"]),
        route(q, api.queue, ["GET"]),
        route(f"{q}/metrics", api.metrics, ["GET"]),
        route(f"{q}/jobs", api.jobs, ["GET"]),
        route(f"{q}/search", api.search, ["GET"]),
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
    routes += schedule_routes(admin, route, api.body)  # job schedulers
    routes += flow_routes(admin, ep, q)  # flow control: GET .../groups
    routes += workflow_routes.routes(ep, admin)
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
