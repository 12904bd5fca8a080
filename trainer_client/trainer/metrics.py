"""Per-step metrics as JSON lines, and zone counts of measured pass rates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
