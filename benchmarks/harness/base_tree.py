"""An earlier commit of Conveyor to benchmark beside the working tree (``run.py --base REV``).

The commit is checked out with ``git worktree add --detach`` into a fresh directory under
``benchmarks/.worktrees/`` (gitignored); its ``src`` goes first on ``PYTHONPATH`` for the base
rows' producer and worker processes, which run this tree's adapters and harness. The worktree
is removed when the run ends, however it ends.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO = BENCH_DIR.parent
WORKTREES = BENCH_DIR / ".worktrees"
#: "conveyor@HEAD~3": the adapter before the mark, the revision after it
MARK = "@"


def base_label(lib: str, rev: str) -> str:
    return f"{lib}{MARK}{rev}"


def adapter_name(label: str) -> str:
    """The peers/<name>.py module a row runs: a base row runs the same adapter."""
    return label.split(MARK, 1)[0]


def git(*args: str) -> str:
    proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout.strip()


def resolve(rev: str) -> str:
    """The full commit id of `rev` (``git rev-parse``), or RuntimeError."""
    try:
        return git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except RuntimeError:
        raise RuntimeError(f"{rev!r} names no commit in {REPO.name}") from None


def this_tree() -> dict[str, object]:
    """What the working tree's rows run: HEAD, and whether src/ has changes on top of it."""
    return {"commit": resolve("HEAD"), "src_changed": bool(git("status", "--porcelain", "src"))}


def within(path: str, root: Path) -> bool:
    return Path(path).resolve().is_relative_to(root.resolve())


def imported_elsewhere(result: dict[str, Any], src: Path) -> str | None:
    """The first file a run's producer or workers imported from outside `src` ("nothing"
    when the run recorded no import at all), or None when every one came from `src`."""
    found = [result.get("origin"), *result.get("worker_origins", [])]
    if not found[0] or result.get("worker_origins") == []:
        return "nothing (a process recorded no origin)"
    return next((str(path) for path in found if not within(str(path), src)), None)


class BaseTree:
    """``with BaseTree(rev) as tree:`` a checkout of `rev` at ``tree.path`` for the block."""

    def __init__(self, rev: str) -> None:
        self.rev = rev
        self.commit = resolve(rev)
        self.this = this_tree()  # what the base is compared with
        self.path: Path | None = None

    def describe(self, base_row: bool) -> str:
        """What a row ran, for its Version cell."""
        if base_row:
            return f"commit {self.commit[:10]}"
        changed = " + changes" if self.this["src_changed"] else ""
        return f"working tree on {str(self.this['commit'])[:10]}{changed}"

    def meta(self) -> dict[str, Any]:
        """For latest.json and the notes above the table."""
        return {
            "rev": self.rev,
            "commit": self.commit,
            "worktree": str(self.path),
            "this_tree": self.this,
        }

    @property
    def src(self) -> Path:
        if self.path is None:
            raise RuntimeError("the base tree is not checked out")
        return self.path / "src"

    def __enter__(self) -> BaseTree:
        WORKTREES.mkdir(exist_ok=True)
        # A fresh name each run: two runs (or a run and the test of run.py) may overlap.
        self.path = Path(tempfile.mkdtemp(prefix=f"{self.commit[:12]}-", dir=WORKTREES))
        try:
            git("worktree", "add", "--detach", str(self.path), self.commit)
            if not (self.src / "conveyor" / "__init__.py").is_file():
                raise RuntimeError(f"{self.rev} ({self.commit[:12]}) has no src/conveyor package")
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def remove(self) -> None:
        if self.path is None:
            return
        path, self.path = self.path, None
        # Never registered, or half made: the directory goes below and prune forgets it.
        with contextlib.suppress(RuntimeError):
            git("worktree", "remove", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "prune"], capture_output=True)
