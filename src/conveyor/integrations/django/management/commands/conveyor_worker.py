"""``python manage.py conveyor_worker TARGET [options of conveyor worker]``."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import (  # type: ignore[import-untyped, unused-ignore]
    BaseCommand,
    CommandParser,
)

from conveyor.cli import worker


class Command(BaseCommand):  # type: ignore[misc, unused-ignore]
    help = "Run a Conveyor worker with Django set up (options as for `conveyor worker`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*", help="TARGET and options, as for conveyor worker")

    def run_from_argv(self, argv: list[str]) -> None:
        # Hand the raw arguments to the click command: same options, help and exit codes.
        manage = os.path.abspath(argv[0])
        prefix = [sys.executable, manage, argv[1]]
        worker.main(args=argv[2:], prog_name=f"{argv[0]} {argv[1]}", obj={"child_prefix": prefix})

    def handle(self, *args: Any, **options: Any) -> None:  # call_command("conveyor_worker", ...)
        worker.main(args=list(args), prog_name="conveyor_worker", standalone_mode=False)
