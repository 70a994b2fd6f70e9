from __future__ import annotations

from typing import Any

from django.apps import AppConfig  # type: ignore[import-untyped, unused-ignore]


class ConveyorConfig(AppConfig):  # type: ignore[misc, unused-ignore]
    name = "conveyor.integrations.django"
    label = "conveyor"
    verbose_name = "Conveyor"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.queues: dict[str, Any] = {}
