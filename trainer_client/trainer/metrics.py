"""Per-step metrics as JSON lines, and a stopwatch for time spent waiting on the service.

The client-call share of step time is the service's overhead on training, the number that
decides whether an HTTP curriculum service is affordable; so every client call in the loop
goes through `ClientTimer.call`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ClientTimer:
    """Accumulates wall time spent inside client calls."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.calls = 0

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.total_s += time.perf_counter() - start
            self.calls += 1


class MetricsLog:
    """Appends one JSON object per line; opened in append mode so a resumed run continues."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open(encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]


def zone_counts(pass_rates: list[float]) -> dict[str, int]:
    """Zones of a list of measured pass rates (every entry has been rolled out)."""
    mastered = sum(1 for p in pass_rates if p >= 1.0)
    intractable = sum(1 for p in pass_rates if p <= 0.0)
    return {
        "intractable": intractable,
        "frontier": len(pass_rates) - mastered - intractable,
        "mastered": mastered,
    }
