"""Issue 25's acceptance targets in a benchmark's own output: each one a JSON object with
the figure measured in this run, the limit, and whether it is met (bench/acceptance.py
collects them from every script's rows)."""

from __future__ import annotations

import math


def target(name: str, value: float, op: str, limit: float, **where: object) -> dict:
    """op: "<=" (at most) or ">=" (at least); a NaN figure (not measured) is not met."""
    if op not in ("<=", ">="):
        raise ValueError(op)
    measured = value == value and not math.isinf(value)
    met = measured and (value <= limit if op == "<=" else value >= limit)
    return {"target": name, "value": value, "op": op, "limit": limit, "met": met, **where}
