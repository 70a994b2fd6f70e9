"""Worker-process entry point: ``python -m harness.worker_main LIB MODE URL``."""

from __future__ import annotations

import importlib
import logging
import sys

from harness.probe import PROBE


def main() -> None:
    lib, mode, url = sys.argv[1:4]
    logging.basicConfig(level=logging.WARNING)
    adapter = importlib.import_module(f"peers.{lib}")
    # The "ready" stamp, at the same point for every library: once it is imported. Building
    # its worker, connecting and its own start-up all count in the drain figures.
    PROBE.start_reporter(url, getattr(adapter, "ORIGIN", None))
    adapter.run_worker(url, mode)


if __name__ == "__main__":
    main()
