"""Flask + Conveyor: ``flask --app app run`` next to ``conveyor worker tasks:queue``."""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request

from conveyor.integrations.flask import Conveyor

conveyor = Conveyor()


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})  # CONVEYOR_URL, CONVEYOR_PREFIX; else the environment
    conveyor.init_app(app)

    @app.post("/signup")
    def signup() -> tuple[dict[str, str], int]:
        email = (request.get_json(silent=True) or {}).get("email") or request.form.get("email")
        if not email:
            abort(400, "email is required")
        job = conveyor.queue("email").add("welcome", {"to": email}, attempts=3)
        return {"job": job.id}, 201

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str) -> dict[str, Any]:
        job = conveyor.queue("email").get_job(job_id)
        if job is None:
            abort(404)
        return {"id": job.id, "state": job.state.value, "result": job.result}

    return app
