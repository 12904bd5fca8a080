"""paced as a prime-rl TaskSampler, on verifiers' own types (checked against verifiers 0.4.0).

prime-rl's curriculum (`prime_rl.orchestrator.curriculum`) holds one `TaskSampler` per train
env: an `Iterator[vf.Task]` with `observe(group: list[vf.Episode])`, `state_dict()`,
`load_state_dict()` and `metrics()`, built over the env's tasks. `PacedTaskSampler` is one:

- `next(sampler)` is the next task of pinned paced draws of `batch_size` problems (draw i under
  one key, so a resumed orchestrator gets exactly the tasks the first one would have). Drawn
  problems are leased until their outcomes arrive: an asynchronous orchestrator that samples
  ahead of what it has graded never gets a task twice while its rollouts are in flight.
- `observe(group)` posts the group's k of n. An episode is one attempt; it errored when it is
  not `ok`, `is_timeout`, or a trainable trace errored or timed out (prime-rl's own has_error
  metric); errored attempts are counted apart, not as failures (see attempts.py). A graded
  episode passed when the mean reward of its trainable traces is >= `success_threshold`.
  Outcomes are at the episode's dispatch step (`episode.run.work.step`) when the orchestrator
  stamped it, else at the draw the task came from.

A task's paced problem id is `problem_id(task)`: by default its durable `data.id`, else its
`key`. `tasks_to_problems` uploads a taskset under those ids. Nothing here imports verifiers:
the sampler reads the attributes of what it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from trainer_client._batch_format import BatchItem
from trainer_client.client import PacedClient
from trainer_client.integrations.attempts import GroupTally, OutcomeSender
from trainer_client.integrations.draws import FILL, PacedDraws

if TYPE_CHECKING:
    import verifiers.v1 as vf


def default_problem_id(task: vf.Task) -> str:
    """The task's durable id when its data has one, else its stable key."""
    return str(task.data.id) if task.data.id is not None else str(task.key)


def tasks_to_problems(
    tasks: Iterable[vf.Task], problem_id: Callable[[vf.Task], str] = default_problem_id
) -> list[dict[str, Any]]:
    """paced problems for these tasks (`client.upsert_problems(dataset, ...)`): the prompt's
    text, the data's `answer` field when it has one, the task key in the metadata."""
    problems = []
    for task in tasks:
        answer = getattr(task.data, "answer", None)
        problems.append(
            {
                "id": problem_id(task),
                "prompt": task.data.prompt_text,
                "answer": None if answer is None else str(answer),
                "metadata": {"task_key": task.key, "name": task.data.name},
            }
        )
    return problems


def episode_reward(episode: vf.Episode) -> float | None:
    """The episode's reward, or None when it errored or timed out (not an attempt to grade)."""
    if episode.is_timeout or not episode.ok:
        return None
    trainable = [trace for trace in episode.traces if trace.agent.trainable]
    if not trainable or any(trace.has_error or trace.is_timeout for trace in trainable):
        return None
    return sum(trace.reward for trace in trainable) / len(trainable)


class PacedTaskSampler(Iterator["vf.Task"]):
    def __init__(
        self,
        client: PacedClient | str,
        run: str,
        tasks: Iterable[vf.Task],
        *,
        problem_id: Callable[[vf.Task], str] = default_problem_id,
        batch_size: int = 32,
        seed: int = 0,
        mode: str = "proportional",
        fill: str | None = FILL,
        lease_ttl_s: float = 3600.0,
        key_prefix: str | None = None,
        success_threshold: float = 1.0,
    ) -> None:
        self.tasks: dict[str, vf.Task] = {}  # paced problem id -> task
        self.problem_of_key: dict[str, str] = {}  # Task.key -> paced problem id
        for task in tasks:
            pid = str(problem_id(task))
            if pid in self.tasks or task.key in self.problem_of_key:
                raise ValueError(f"two tasks share the problem id {pid!r} or key {task.key!r}")
            self.tasks[pid] = task
            self.problem_of_key[task.key] = pid
        if not self.tasks:
            raise ValueError("PacedTaskSampler needs the env's (finite) tasks")
        self.draws = PacedDraws(
            client,
            run,
            batch_size,
            seed=seed,
            mode=mode,
            fill=fill,
            skip_leased=True,
            lease_ttl_s=lease_ttl_s,
            key_prefix=key_prefix,
        )
        self.sender = OutcomeSender(
            self.draws.client, run, key_prefix=f"{self.draws.key_prefix}:observe"
        )
        self.success_threshold = success_threshold
        self.next_draw = 0
        self.offset = 0  # tasks of the current draw already handed out
        self._current: list[BatchItem] | None = None
        self.drawn_at: dict[str, int] = {}  # problem id -> the draw it was last handed out from

    def __next__(self) -> vf.Task:
        if self._current is not None and self.offset >= len(self._current):
            self.next_draw, self.offset, self._current = self.next_draw + 1, 0, None
        if self._current is None:
            self._current = list(self.draws.draw(self.next_draw).items)
            if not self._current:
                raise StopIteration
        item = self._current[self.offset]
        self.offset += 1
        if item.problem_id not in self.tasks:
            raise KeyError(f"paced drew problem {item.problem_id!r}, which no task of the env has")
        self.drawn_at[item.problem_id] = self.next_draw
        return self.tasks[item.problem_id]

    @property
    def current_item(self) -> BatchItem | None:
        """The paced item of the latest task (its weight, loss_weight and source)."""
        return self._current[self.offset - 1] if self._current and self.offset else None

    def observe(self, group: list[vf.Episode]) -> GroupTally:
        """Report a finalized group of one task; the same group again counts once."""
        keys = {episode.task.key for episode in group}
        if not group or len(keys) != 1 or None in keys:
            raise ValueError(f"a group is the episodes of one task with a key, got keys {keys}")
        key = str(keys.pop())
        if key not in self.problem_of_key:
            raise ValueError(f"episodes of task key {key!r}, which this sampler never had")
        pid = self.problem_of_key[key]
        rewards = [episode_reward(episode) for episode in group]
        tally = GroupTally(
            problem_id=pid,
            passed=tuple(r >= self.success_threshold for r in rewards if r is not None),
            errored=sum(r is None for r in rewards),
            step=self._step_of(group[0], pid),
        )
        self.sender.send([tally], identity=[episode.id for episode in group])
        return tally

    def _step_of(self, episode: vf.Episode, pid: str) -> int:
        work = getattr(episode.run, "work", None)  # TrainRunInfo stamped by the orchestrator
        if work is not None and work.type == "train":
            return int(work.step)
        return self.drawn_at.get(pid, self.next_draw)

    def state_dict(self) -> dict[str, Any]:
        sender = self.sender.state_dict()  # posts a service outage left pending
        return {"next_draw": self.next_draw, "offset": self.offset, "sender": sender}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.next_draw, self.offset = int(state["next_draw"]), int(state["offset"])
        self.sender.load_state_dict(state.get("sender", {}))
        self._current = None
        if self.offset:  # re-read the pinned draw the position points into
            self._current = list(self.draws.draw(self.next_draw).items)

    def metrics(self) -> dict[str, float]:
        """Under prime-rl's `curriculum/{env}/sampler/` namespace."""
        totals = self.sender.totals
        graded = totals["attempts"]
        return {
            "paced/draw": float(self.next_draw),
            "paced/groups": float(totals["groups"]),
            "paced/attempts": float(totals["attempts"]),
            "paced/pass_rate": totals["successes"] / graded if graded else 0.0,
            "paced/errored": float(totals["errored"]),
            "paced/pending_posts": float(len(self.sender.pending)),
        }
