"""Start Python subprocesses (e.g. Conveyor workers) for tests, and never leak them.

Each process runs ``python -c <code>`` with the interpreter running the tests, the
repository's ``src`` first on ``PYTHONPATH``, unbuffered output captured to files, and
its own process group so that anything it forks can be killed with it.

Use the ``spawn`` fixture from ``tests/conftest.py``; it kills everything it started
at teardown.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Literal

from tests.support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC_DIR = REPO_ROOT / "src"

Stream = Literal["stdout", "stderr", "both"]

_live: weakref.WeakSet[SpawnedProcess] = weakref.WeakSet()
_counter = itertools.count(1)


class SpawnedProcess:
    """A running ``python -c`` subprocess with output captured to files."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        name: str,
        stdout_path: Path,
        stderr_path: Path,
        files: Sequence[IO[bytes]],
    ) -> None:
        self.popen = popen
        self.name = name
        self.stdout_path = stdout_path
        self.stderr_path = stderr_path
        self._files = list(files)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def output(self, stream: Stream = "both") -> str:
        if stream == "stdout":
            return self.stdout()
        if stream == "stderr":
            return self.stderr()
        return self.stdout() + self.stderr()

    def describe(self) -> str:
        """Name, state and captured output, for assertion messages."""
        state = "running" if self.alive else f"exited with {self.returncode}"
        return (
            f"process {self.name} (pid {self.pid}) {state}\n"
            f"--- stdout ---\n{self.stdout()}\n--- stderr ---\n{self.stderr()}"
        )

    def wait_for_output(self, text: str, timeout: float = 10.0, stream: Stream = "both") -> None:
        """Wait until ``text`` appears in the captured output.

        Fails early, with the output, if the process exits without printing it.
        """

        def seen() -> bool:
            if text in self.output(stream):
                return True
            if not self.alive and text not in self.output(stream):
                raise AssertionError(f"exited before printing {text!r}: {self.describe()}")
            return False

        wait_for(seen, timeout, message=lambda: f"{text!r} not printed: {self.describe()}")

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process itself (not its group)."""
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)

    def wait(self, timeout: float = 10.0) -> int:
        """Wait for exit; raise AssertionError (with output) if it outlives ``timeout``."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running after {timeout}s: {self.describe()}") from None

    def terminate(self, timeout: float = 5.0, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM), wait up to ``timeout``, then SIGKILL the whole group.

        Returns the exit code (negative for death by signal).
        """
        if self.alive:
            self.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        self.kill()
        assert self.popen.returncode is not None
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL the process and everything in its process group, then reap it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()
        self.popen.wait()
        for f in self._files:
            f.close()
        self._files = []
        _live.discard(self)

    def __repr__(self) -> str:
        state = "running" if self.alive else f"exited {self.returncode}"
        return f"<SpawnedProcess {self.name} pid={self.pid} {state}>"


def python_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child: ours, ``src`` first on PYTHONPATH, unbuffered."""
    child = dict(os.environ)
    paths = [str(SRC_DIR), str(REPO_ROOT)]
    if child.get("PYTHONPATH"):
        paths.append(child["PYTHONPATH"])
    child["PYTHONPATH"] = os.pathsep.join(paths)
    child["PYTHONUNBUFFERED"] = "1"
    if env:
        child.update(env)
    return child


def spawn_python(
    code: str,
    *,
    output_dir: Path,
    args: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    cwd: Path | None = None,
) -> SpawnedProcess:
    """Run ``python -c <code> *args`` (code is dedented) in a new process group.

    stdout/stderr go to ``<output_dir>/<name>.stdout`` / ``.stderr``. The caller must
    make sure it is stopped; prefer the ``spawn`` fixture / :class:`ProcessManager`.
    """
    name = name or f"proc{next(_counter)}"
    output_dir.mkdir(parents=True, exist_ok=True)
    stdout_path = output_dir / f"{name}.stdout"
    stderr_path = output_dir / f"{name}.stderr"
    out = open(stdout_path, "wb")  # noqa: SIM115 - closed by SpawnedProcess.kill()
    err = open(stderr_path, "wb")  # noqa: SIM115
    try:
        popen = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=python_env(env),
            cwd=cwd or REPO_ROOT,
            start_new_session=True,
        )
    except BaseException:
        out.close()
        err.close()
        raise
    proc = SpawnedProcess(popen, name, stdout_path, stderr_path, (out, err))
    _live.add(proc)
    return proc


class ProcessManager:
    """Starts processes into one output directory and stops them all on :meth:`close`."""

    def __init__(self, output_dir: Path, stop_timeout: float = 5.0) -> None:
        self.output_dir = output_dir
        self.stop_timeout = stop_timeout
        self.processes: list[SpawnedProcess] = []

    def spawn(
        self,
        code: str,
        *,
        args: Iterable[str] = (),
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        cwd: Path | None = None,
    ) -> SpawnedProcess:
        proc = spawn_python(
            code, output_dir=self.output_dir, args=args, env=env, name=name, cwd=cwd
        )
        self.processes.append(proc)
        return proc

    __call__ = spawn

    def close(self) -> None:
        """Terminate every process (SIGTERM, then SIGKILL after ``stop_timeout``)."""
        deadline = time.monotonic() + self.stop_timeout
        alive = [p for p in self.processes if p.alive]
        for proc in alive:
            proc.send_signal(signal.SIGTERM)
        for proc in alive:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in self.processes:
            proc.kill()  # also kills anything left in its process group


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_live):
        with contextlib.suppress(Exception):
            proc.kill()
