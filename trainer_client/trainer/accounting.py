"""What a run spends, kept out of the loop: counters, the clock of client calls, the step record.

The client-call share of step time is the service's overhead on training, the number that
decides whether an HTTP curriculum service is affordable. `ClientClock` measures it with
httpx event hooks on the PacedClient's own httpx client, so no call site is wrapped: every
request the loop (or anything else sharing the client) sends is counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from trainer_client.client import PacedClient
from trainer_client.trainer.draws import DrawnBatch

_STARTED = "paced_clock_started"  # request extension holding the send time of an attempt
_THREAD = "paced_clock_thread"  # ... and the thread that sent it


@dataclass
class Counters:
    """Totals over a run; saved in checkpoints, so a resumed run keeps counting."""

    rollouts: int = 0  # completions generated: estimation, refresh, on-policy samples
    teacher_forwards: int = 0  # problems trained on (teacher forward on each)
    conflicts: int = 0  # 409 answers met while drawing batches
    fallbacks: int = 0  # batches that were not the scheme's own (uniform or local)
    refreshes: int = 0
    references_rejected: int = 0  # pool problems whose teacher reference the verifier rejects
    references_missing: int = 0  # pool problems without a teacher reference
    estimate_s: float = 0.0
    train_s: float = 0.0  # responses, forward, backward and optimiser step
    step_s: float = 0.0
    client_s: float = 0.0  # inside client calls during steps
    steps_run: int = 0  # in this and earlier sessions of the run
    wall_s: float = 0.0  # across resumed sessions

    @contextmanager
    def timing(self, name: str) -> Iterator[None]:
        """Adds the block's wall time to the float counter `name` (e.g. "train_s")."""
        started = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, name, getattr(self, name) + time.perf_counter() - started)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load(self, saved: dict[str, Any]) -> None:
        """Continue from a checkpoint's totals, in place (the loop's parts share this object)."""
        for name, value in saved.items():
            setattr(self, name, value)


@dataclass
class Lap:
    """One step's wall time and the part of it spent inside client calls."""

    wall_s: float = 0.0
    client_s: float = 0.0


class ClientClock:
    """Seconds the training thread spends on the service: inside its own HTTP requests (each
    attempt from send to body read; retry back-off sleeps and response parsing are not HTTP
    time) plus `waiting()` on requests sent ahead by other threads (a prefetched batch).
    Requests sent by other threads are off the critical path: counted in `background_s`."""

    def __init__(self) -> None:
        self.total_s = 0.0
        self.requests = 0
        self.background_s = 0.0
        self.background_requests = 0
        self._owner = threading.get_ident()  # the training thread: the one that made the clock
        self._lock = threading.Lock()  # PacedClient is thread-safe; so is its clock

    @contextmanager
    def attached(self, client: PacedClient) -> Iterator[ClientClock]:
        """Hooks into `client` for the block; the caller's client is left as it was after."""
        http = client.http_client
        before = http.event_hooks
        http.event_hooks = {
            "request": [*before["request"], self._on_request],
            "response": [*before["response"], self._on_response],
        }
        try:
            yield self
        finally:
            http.event_hooks = before

    @contextmanager
    def lap(self) -> Iterator[Lap]:
        lap = Lap()
        started, client_before = time.perf_counter(), self.total_s
        try:
            yield lap
        finally:
            lap.wall_s = time.perf_counter() - started
            lap.client_s = self.total_s - client_before

    @contextmanager
    def waiting(self) -> Iterator[None]:
        """The block waits on the service through another thread: critical-path time."""
        started = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self.total_s += time.perf_counter() - started

    def _on_request(self, request: httpx.Request) -> None:
        request.extensions[_STARTED] = time.perf_counter()
        request.extensions[_THREAD] = threading.get_ident()

    def _on_response(self, response: httpx.Response) -> None:
        response.read()  # response hooks run before the body is read; it is part of the call
        elapsed = time.perf_counter() - response.request.extensions[_STARTED]
        with self._lock:
            if response.request.extensions[_THREAD] == self._owner:
                self.total_s += elapsed
                self.requests += 1
            else:
                self.background_s += elapsed
                self.background_requests += 1


@dataclass(frozen=True)
class StepResult:
    """What one training step did (every count over all ranks)."""

    step: int
    drawn: DrawnBatch
    loss_kind: str
    loss: float = 0.0
    trained_items: int = 0  # drawn items with a loss weight > 0
    response_tokens: int = 0
    backward_tokens: int = 0  # prompt + response tokens through the student
    refreshed: int = 0  # problems re-estimated by the scheduled refresh


def count_step(counters: Counters, result: StepResult, lap: Lap) -> None:
    counters.conflicts += result.drawn.conflicts
    counters.fallbacks += result.drawn.fallback is not None
    counters.teacher_forwards += result.trained_items
    if result.loss_kind == "rkl":  # one fresh student sample per trained item
        counters.rollouts += result.trained_items
    counters.step_s += lap.wall_s
    counters.client_s += lap.client_s
    counters.steps_run += 1


def step_record(
    result: StepResult, scheme: str, difficulty: dict[str, Any], counters: Counters, lap: Lap
) -> dict[str, Any]:
    """The metrics.jsonl line of one step (docs/trainer.md lists the fields)."""
    items = result.drawn.items
    rates = [item.pass_rate for item in items if item.pass_rate is not None]
    return {
        "step": result.step,
        "loss": result.loss,
        "loss_kind": result.loss_kind,
        "scheme": scheme,
        "batch_ids": [item.problem_id for item in items],
        "batch_size": len(items),
        "trained_items": result.trained_items,
        "batch_mean_pass_rate": sum(rates) / len(rates) if rates else None,
        "batch_pass_rates": [item.pass_rate for item in items],
        "mean_loss_weight": sum(i.loss_weight for i in items) / len(items) if items else 0.0,
        "zones": difficulty["zones"],
        "effective_problems": difficulty["effective_problems"],
        "tokens": result.response_tokens,
        "teacher_forwards": counters.teacher_forwards,
        "student_backward_tokens": result.backward_tokens,
        "rollouts_spent": counters.rollouts,
        "refreshed": result.refreshed,
        "conflicts": result.drawn.conflicts,
        "fallback": result.drawn.fallback,
        "step_time_s": lap.wall_s,
        "client_time_s": lap.client_s,
    }
