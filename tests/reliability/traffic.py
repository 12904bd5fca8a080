"""Client-side retry loop shared by the load tests: what a well-behaved trainer worker does."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.reliability.servers import Submission


@dataclass
class Tally:
    """What the clients saw. Counter updates from many threads: += on a key is not atomic,
    so each writer keeps its own Tally and the test merges them."""

    statuses: Counter[int] = field(default_factory=Counter)
    client_timeouts: int = 0
    transport_errors: int = 0
    server_replays: int = 0
    missing_retry_after: int = 0

    def merge(self, other: Tally) -> None:
        self.statuses.update(other.statuses)
        self.client_timeouts += other.client_timeouts
        self.transport_errors += other.transport_errors
        self.server_replays += other.server_replays
        self.missing_retry_after += other.missing_retry_after

    @property
    def unexpected(self) -> dict[int, int]:
        """Anything but 200 (accepted or replayed) and 503 (retry later)."""
        return {s: n for s, n in self.statuses.items() if s not in (200, 503)}


def post_until_accepted(
    http: httpx.Client,
    run: str,
    sub: Submission,
    tally: Tally,
    rng: random.Random,
    *,
    short_timeout_p: float = 0.0,
    deadline_s: float = 60.0,
    retry_sleep_s: float = 0.05,
) -> httpx.Response:
    """Post until a 200, retrying timeouts, transport errors and 503 with the same key.

    With probability `short_timeout_p` the first try uses a timeout too short for the server
    to answer, so the client gives up while the server may still commit — the retry must
    then be recognised as a replay.
    """
    give_up = time.monotonic() + deadline_s
    first = True
    while True:
        timeout = rng.uniform(0.001, 0.03) if first and rng.random() < short_timeout_p else 30.0
        first = False
        try:
            response = http.post(
                f"/v1/runs/{run}/outcomes",
                json=sub.body(),
                headers={"Idempotency-Key": sub.key},
                timeout=timeout,
            )
        except httpx.TimeoutException:
            tally.client_timeouts += 1
        except httpx.TransportError:
            tally.transport_errors += 1
        else:
            tally.statuses[response.status_code] += 1
            if response.status_code == 200:
                if response.headers.get("idempotent-replayed") == "true":
                    tally.server_replays += 1
                return response
            if response.status_code == 503:
                if "retry-after" not in response.headers:
                    tally.missing_retry_after += 1
            else:
                # 4xx/500: retrying would not help; the test asserts on the tally.
                return response
        if time.monotonic() > give_up:
            raise TimeoutError(f"submission {sub.key} not accepted within {deadline_s}s")
        time.sleep(retry_sleep_s)
