"""Run N worker processes and keep them running (``conveyor worker --workers N``, ``--reload``).

The supervisor owns no jobs and never talks to Redis. It starts each worker as a child process
(in its own process group, so a terminal's Ctrl-C reaches only the supervisor, which then stops
the children in order), and:

* restarts a child that dies, after a backoff that doubles with each quick death
  (``backoff_base`` .. ``backoff_max`` seconds) and resets once a child has lived
  ``stable_after`` seconds;
* leaves a child that exited with 0 stopped (burst mode, ``--max-jobs``): when every child has
  finished, the supervisor exits 0;
* gives up when a child reports a configuration problem (exit codes in ``fatal_codes``), since
  restarting cannot fix it, and exits with that code;
* on SIGTERM/SIGINT sends SIGTERM to every child (they finish or hand back their jobs), waits
  up to ``stop_timeout`` and then SIGKILLs what is left; a second signal is passed on, which
  makes the workers skip the rest of their grace period;
* with ``reload_paths``, restarts every child when a ``*.py`` file under those paths changes.

Children learn the supervisor's pid from ``CONVEYOR_PARENT_PID`` and stop by themselves if it
disappears (see ``watch_parent``), so killing the supervisor with SIGKILL strands nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import FrameType

__all__ = ["RESTARTS_ENV", "Supervisor", "watch_parent"]

log = logging.getLogger("conveyor.supervisor")

_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".tox"}


#: The environment variable that tells a worker process how often its slot was restarted (its
#: heartbeat publishes it, so the workers view shows a crash loop).
RESTARTS_ENV = "CONVEYOR_WORKER_RESTARTS"


@dataclasses.dataclass(slots=True)
class _Slot:
    number: int
    #: How many times this slot's process died and was started again (told to the child).
    restarts: int = 0
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float | None = 0.0  # when to (re)start; None = finished, leave stopped
    exit_code: int | None = None


class Supervisor:
    """Keeps ``processes`` copies of ``command`` running; ``run()`` returns the exit code."""

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        *,
        env: Mapping[str, str] | None = None,
        reload_paths: Iterable[str | Path] = (),
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        stable_after: float = 30.0,
        stop_timeout: float = 40.0,
        fatal_codes: Iterable[int] = (2, 4),
        poll_interval: float = 0.2,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, not {processes}")
        self.command = list(command)
        self.env = dict(os.environ if env is None else env)
        self.env["CONVEYOR_PARENT_PID"] = str(os.getpid())
        self.slots = [_Slot(i + 1) for i in range(processes)]
        self.reload_paths = [Path(p) for p in reload_paths]
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.fatal_codes = set(fatal_codes)
        self.poll_interval = poll_interval
        self.restarts = 0
        self._signals: list[int] = []
        self._wake = threading.Event()
        self._snapshot: dict[Path, float] = {}

    # -- public --------------------------------------------------------------------------------

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            return self._loop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def backoff(self, quick_deaths: int) -> float:
        """Seconds to wait before restarting a child that died ``quick_deaths`` times in a row."""
        if quick_deaths <= 0:
            return 0.0
        return float(min(self.backoff_base * 2 ** (quick_deaths - 1), self.backoff_max))

    # -- internals -----------------------------------------------------------------------------

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        self._signals.append(sig)
        self._wake.set()

    def _loop(self) -> int:
        if self.reload_paths:
            self._snapshot = self._scan()
        next_scan = time.monotonic() + 0.5
        while True:
            if self._signals:
                return self._stop()
            now = time.monotonic()
            fatal = self._reap(now)
            if fatal is not None:
                self._stop(announce=False)
                return fatal
            if all(slot.restart_at is None and slot.proc is None for slot in self.slots):
                log.info("all worker processes finished")
                return 0
            for slot in self.slots:
                if slot.proc is None and slot.restart_at is not None and slot.restart_at <= now:
                    self._start(slot)
            if self.reload_paths and now >= next_scan:
                next_scan = now + 0.5
                self._check_reload()
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def _start(self, slot: _Slot) -> None:
        env = dict(self.env)
        env["CONVEYOR_WORKER_PROCESS"] = str(slot.number)
        env[RESTARTS_ENV] = str(slot.restarts)
        try:
            slot.proc = subprocess.Popen(
                self.command, env=env, stdin=subprocess.DEVNULL, process_group=0
            )
        except OSError as exc:
            log.error("could not start worker process %d: %s", slot.number, exc)
            slot.quick_deaths += 1
            slot.restart_at = time.monotonic() + self.backoff(slot.quick_deaths)
            return
        slot.started_at = time.monotonic()
        slot.restart_at = None
        log.info("worker process %d started (pid %d)", slot.number, slot.proc.pid)

    def _reap(self, now: float) -> int | None:
        """Notice children that exited; schedule restarts. Returns an exit code to give up."""
        for slot in self.slots:
            if slot.proc is None:
                continue
            code = slot.proc.poll()
            if code is None:
                continue
            pid, slot.proc, slot.exit_code = slot.proc.pid, None, code
            if code == 0:
                log.info("worker process %d (pid %d) finished", slot.number, pid)
                slot.restart_at = None
                continue
            if code in self.fatal_codes:
                log.error(
                    "worker process %d (pid %d) exited with code %d (a configuration problem "
                    "that restarting cannot fix); stopping",
                    slot.number,
                    pid,
                    code,
                )
                return code
            lived = now - slot.started_at
            slot.quick_deaths = 1 if lived >= self.stable_after else slot.quick_deaths + 1
            delay = self.backoff(slot.quick_deaths)
            slot.restart_at = now + delay
            self.restarts += 1
            slot.restarts += 1
            log.warning(
                "worker process %d (pid %d) %s after %.1f s; restarting in %.1f s",
                slot.number,
                pid,
                _describe_exit(code),
                lived,
                delay,
            )
        return None

    def _stop(self, announce: bool = True) -> int:
        """Stop every child: SIGTERM, pass on further signals, SIGKILL at the deadline."""
        if announce:
            log.info("stopping %d worker processes", sum(s.proc is not None for s in self.slots))
        handled = len(self._signals)
        self._send(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        while any(s.proc is not None and s.proc.poll() is None for s in self.slots):
            if time.monotonic() >= deadline:
                log.error(
                    "worker processes did not stop within %.0f s; killing them", self.stop_timeout
                )
                self._send(signal.SIGKILL, group=True)
                break
            if len(self._signals) > handled:
                handled = len(self._signals)
                log.warning("signal again: asking worker processes to stop now")
                self._send(signal.SIGTERM)
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        for slot in self.slots:
            if slot.proc is not None:
                slot.proc.wait()
                # Anything the worker itself started in its group goes with it.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(slot.proc.pid, signal.SIGKILL)
                slot.proc = None
        return 0

    def _send(self, sig: int, group: bool = False) -> None:
        for slot in self.slots:
            if slot.proc is not None and slot.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    if group:
                        os.killpg(slot.proc.pid, sig)
                    else:
                        slot.proc.send_signal(sig)

    # -- reload --------------------------------------------------------------------------------

    def _scan(self) -> dict[Path, float]:
        found: dict[Path, float] = {}
        for root in self.reload_paths:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
                for name in filenames:
                    if name.endswith(".py"):
                        path = Path(dirpath, name)
                        with contextlib.suppress(OSError):
                            found[path] = path.stat().st_mtime
        return found

    def _check_reload(self) -> None:
        snapshot = self._scan()
        if snapshot == self._snapshot:
            return
        changed = sorted(
            str(p)
            for p in set(snapshot) | set(self._snapshot)
            if snapshot.get(p) != self._snapshot.get(p)
        )
        self._snapshot = snapshot
        log.info("changes detected (%s); restarting worker processes", ", ".join(changed[:3]))
        self._send(signal.SIGTERM)
        for slot in self.slots:
            if slot.proc is not None:
                try:
                    slot.proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(slot.proc.pid, signal.SIGKILL)
                    slot.proc.wait()
                slot.proc = None
            slot.quick_deaths = 0
            slot.restart_at = time.monotonic()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def watch_parent(interval: float = 1.0) -> threading.Thread | None:
    """In a supervised child: SIGTERM ourselves if the supervisor (``CONVEYOR_PARENT_PID``) goes
    away, so that no worker outlives a killed supervisor. Returns the watcher thread, if any."""
    raw = os.environ.get("CONVEYOR_PARENT_PID")
    if not raw or not raw.isdigit():
        return None
    parent = int(raw)
    if os.getppid() != parent:
        return None

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(interval):
            if os.getppid() != parent:
                log.warning("supervisor (pid %d) is gone; stopping", parent)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    thread = threading.Thread(target=watch, name="conveyor-parent-watch", daemon=True)
    thread.start()
    return thread
