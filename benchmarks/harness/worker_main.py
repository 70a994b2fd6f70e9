"""Worker-process entry point: ``python -m harness.worker_main LIB MODE URL``."""

from __future__ import annotations

import importlib
import logging
import sys


def main() -> None:
    lib, mode, url = sys.argv[1:4]
    logging.basicConfig(level=logging.WARNING)
    adapter = importlib.import_module(f"peers.{lib}")
    adapter.run_worker(url, mode)


if __name__ == "__main__":
    main()
