"""Real dashboard server processes for HTTP tests: ``conveyor dashboard`` itself, or
``create_app(...)`` served by uvicorn when a test needs an option the CLI does not have."""

from __future__ import annotations

import base64
import json
import socket
from typing import Any

from tests.support.processes import ProcessManager, SpawnedProcess
from tests.support.redis_server import find_free_port
from tests.support.waiting import wait_for

CLI = "import sys; from conveyor.cli import main; main()"

SERVE_APP = """
import base64, json, sys
import uvicorn
from conveyor.web import create_app

options = json.loads(sys.argv[1])
if options.get("secret_key"):
    options["secret_key"] = base64.b64decode(options["secret_key"])
port = options.pop("port")
app = create_app(**options)
print("serving", flush=True)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


def _wait_until_serving(proc: SpawnedProcess, port: int) -> None:
    # A connection accepted is enough: an answer may take seconds when Redis is unreachable.
    def listening() -> bool:
        assert proc.alive, proc.describe()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_for(listening, timeout=20, interval=0.1, message=lambda: proc.describe())


def start_dashboard(
    spawn: ProcessManager, *args: str, env: dict[str, str] | None = None
) -> tuple[SpawnedProcess, str]:
    """``conveyor dashboard --port <free> *args``; returns the process and its base URL once
    it answers HTTP."""
    port = find_free_port()
    proc = spawn(CLI, args=["dashboard", "--port", str(port), *args], env=env, name="dashboard")
    _wait_until_serving(proc, port)
    return proc, f"http://127.0.0.1:{port}"


def serve_app(spawn: ProcessManager, **options: Any) -> tuple[SpawnedProcess, str]:
    """``create_app(**options)`` served by uvicorn on a free loopback port (``secret_key`` as
    bytes is passed through base64)."""
    port = find_free_port()
    if isinstance(options.get("secret_key"), bytes):
        options["secret_key"] = base64.b64encode(options["secret_key"]).decode()
    proc = spawn(SERVE_APP, args=[json.dumps({**options, "port": port})], name="app-server")
    _wait_until_serving(proc, port)
    return proc, f"http://127.0.0.1:{port}"


def rss_kib(pid: int) -> int:
    """The resident set size of process ``pid`` (VmRSS in /proc), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")
