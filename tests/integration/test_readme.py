"""The README's example runs as written: cut from README.md, saved as a file, run as a script."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conveyor import SyncQueue

pytestmark = pytest.mark.timeout(90)

README = Path(__file__).resolve().parents[2] / "README.md"
RECIPIENTS = ("ada@example.com", "alan@example.com", "grace@example.com")


def readme_example() -> str:
    """The first ``python`` block under the README's ``## Example`` heading."""
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Example\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section is not None, "README.md has no '## Example' section"
    block = re.search(r"^```python\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    assert block is not None, "the README's Example section has no python block"
    return block.group(1)


def test_the_example_is_a_whole_program() -> None:
    source = readme_example()
    compile(source, "example.py", "exec")  # no top-level await, no fragments
    assert "asyncio.run(main())" in source
    assert "await worker.close()" in source


def test_the_readme_example_runs_as_written(make_redis: Callable[..., Any], tmp_path: Path) -> None:
    server = make_redis()
    script = tmp_path / "example.py"
    script.write_text(readme_example(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "REDIS_"))}
    env["CONVEYOR_URL"] = server.url
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    lines = done.stdout.splitlines()
    for to in RECIPIENTS:
        assert any(to in line and f"'sent_to': '{to}'" in line for line in lines), done.stdout

    # What the example printed is what Redis holds: three completed jobs, nothing left over.
    queue = SyncQueue("email", url=server.url)
    try:
        counts = queue.counts()
        assert counts["completed"] == len(RECIPIENTS), counts
        assert counts["waiting"] == counts["active"] == counts["failed"] == 0, counts
    finally:
        queue.close()
