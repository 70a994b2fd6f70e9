"""The runtimes of the peers written in other languages (Node, Ruby), and their setup.

run.py calls :func:`prepare` once for the selected libraries before any run: `npm ci` in
``benchmarks/node`` when its ``node_modules`` is missing or older than the lockfile, and
Debian's ``ruby-sidekiq`` through apt when Sidekiq is missing and we may install it. A peer
whose runtime is still missing afterwards is skipped, with the reason in its cells.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
NODE_DIR = BENCH_DIR / "node"
RUBY_DIR = BENCH_DIR / "ruby"
NODE_STAMP = NODE_DIR / "node_modules" / ".package-lock.sha256"

#: library (row) -> the runtime that runs its producer and its workers
RUNTIMES = {
    "bullmq_node": "node",
    "bull": "node",
    "kue": "node",
    "beequeue": "node",
    "sidekiq": "ruby",
}


def script(runtime: str) -> Path:
    return NODE_DIR / "bench.js" if runtime == "node" else RUBY_DIR / "bench.rb"


def _lock_digest() -> str:
    return hashlib.sha256((NODE_DIR / "package-lock.json").read_bytes()).hexdigest()


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 900) -> str | None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{' '.join(cmd[:3])} failed: {exc}"
    if proc.returncode:
        tail = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        return f"{' '.join(cmd[:3])} exited {proc.returncode}: {tail[-1] if tail else ''}"[:300]
    return None


def sidekiq_loads() -> bool:
    ruby = shutil.which("ruby")
    return bool(ruby) and _run([str(ruby), "-e", 'require "sidekiq"'], timeout=60) is None


def prepare_node() -> str | None:
    """Node's packages, installed with `npm ci` from the lockfile. Returns why not, or None."""
    if not shutil.which("node") or not shutil.which("npm"):
        return "node/npm not found on PATH: install Node 20 to run this peer"
    if NODE_STAMP.exists() and NODE_STAMP.read_text().strip() == _lock_digest():
        return None
    print("installing the Node peers (npm ci in benchmarks/node) ...", file=sys.stderr)
    error = _run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR)
    if error:
        return error
    NODE_STAMP.write_text(_lock_digest() + "\n")
    return None


def prepare_ruby() -> str | None:
    """Sidekiq from Debian (`ruby-sidekiq`, 6.4), installed with apt when missing."""
    if sidekiq_loads():
        return None
    apt = shutil.which("apt-get")
    if not apt or os.geteuid() != 0:
        return "ruby with sidekiq not found (install Debian's ruby-sidekiq) to run this peer"
    print("installing ruby-sidekiq with apt-get ...", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = [apt, "install", "-y", "--no-install-recommends", "ruby-sidekiq"]
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=900)
    if proc.returncode:  # the package lists may be stale
        subprocess.run([apt, "update"], capture_output=True, env=env, timeout=600)
        subprocess.run(cmd, capture_output=True, env=env, timeout=900)
    if sidekiq_loads():
        return None
    return "apt-get install ruby-sidekiq did not give a ruby that loads sidekiq: peer skipped"


def prepare(libs: list[str]) -> dict[str, str]:
    """Set up the runtimes the selected libraries need; library -> why it must be skipped."""
    needed = {RUNTIMES[lib] for lib in libs if lib in RUNTIMES}
    errors = {rt: err for rt in sorted(needed) if (err := _prepare(rt))}
    return {lib: errors[rt] for lib, rt in RUNTIMES.items() if lib in libs and rt in errors}


def _prepare(runtime: str) -> str | None:
    return prepare_node() if runtime == "node" else prepare_ruby()
