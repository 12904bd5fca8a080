"""What prime-rl asks of a TaskSampler, written here (prime-rl is not on the registry).

Mirrors `prime_rl.orchestrator.curriculum`: the `TaskSampler` base (an Iterator of vf.Task with
observe / state_dict / load_state_dict / metrics) and `Curriculum.on_result`'s checks on a
finalized group (non-empty, one Task.key, not None) before the sampler observes it; metrics
are namespaced `sampler/{name}` and must be numbers. The episodes are real `vf.Episode`s with
real `vf.Trace`s, built as verifiers' Env.run_episode leaves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import verifiers.v1 as vf


class SumData(vf.TaskData):
    answer: str


class SumTask(vf.Task[SumData, vf.State]):
    pass


class Sums(vf.Taskset[SumTask, vf.TasksetConfig]):
    """A finite taskset with durable ids (`data.id`); iterating sets each task's idx."""

    def __init__(self, count: int) -> None:
        super().__init__(vf.TasksetConfig())
        self.count = count

    def load(self):
        for i in range(self.count):
            yield SumTask(SumData(id=f"sum-{i}", prompt=f"{i} + 1 =", answer=str(i + 1)))


class Curriculum:
    """prime-rl's curriculum lifecycle around one sampler (no gates)."""

    def __init__(self, sampler: Any) -> None:
        assert isinstance(sampler, Iterator)
        for method in ("observe", "state_dict", "load_state_dict", "metrics"):
            assert callable(getattr(sampler, method)), method
        self.sampler = sampler

    def next_task(self) -> vf.Task:
        task = next(self.sampler)
        assert isinstance(task, vf.Task)
        return task

    def on_result(self, group: list[vf.Episode]) -> bool:
        if not group:
            raise ValueError("Cannot report an empty rollout group")
        keys = {episode.task.key for episode in group}
        if None in keys:
            raise ValueError("A finalized group is missing Task.key")
        if len(keys) != 1:
            raise ValueError(f"A finalized group contains multiple task keys: {keys}")
        self.sampler.observe(group)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"sampler": self.sampler.state_dict(), "gates": {}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state["sampler"])

    def metrics(self) -> dict[str, float]:
        return {f"sampler/{k}": float(v) for k, v in self.sampler.metrics().items()}


def episode(
    task: vf.Task,
    reward: float | None,
    *,
    error: str | None = None,
    timeout: bool = False,
    retried: bool = False,
    step: int | None = None,
) -> vf.Episode:
    """One finished episode of `task`: a graded trace, or one that errored / timed out.
    `error="episode"` is an env hook's failure (no trace); "trace" a failed agent run;
    `retried` an episode whose earlier attempt failed (its error kept, the verdict ok)."""
    traced = vf.TraceTask(type=type(task).__name__, data=task.data, key=task.key, hash=task.hash)
    run = vf.TrainRunInfo(id="run", work=vf.TrainWorkInfo(step=step)) if step is not None else None
    if error == "episode" or timeout:
        failure = vf.Error(type="TimeoutError" if timeout else "EnvError", message="setup failed")
        return vf.Episode(task=traced, run=run, ok=False, is_timeout=timeout, errors=[failure])
    trace = vf.Trace(task=traced, agent=vf.AgentInfo(config=vf.AgentConfig()), ok=True)
    if error == "trace":
        trace.record_error(RuntimeError("tool call failed"))
    else:
        trace.record_reward("correct", float(reward or 0.0))
    earlier = [vf.Error(type="ProviderError", message="503 from the model")] if retried else []
    return vf.Episode(task=traced, run=run, ok=trace.ok, traces=[trace], errors=earlier)
