"""paced inside NeMo-RL's GRPO through its custom-dataloader slot (config, plus one line):

    data:
      use_multiple_dataloader: true
      custom_dataloader: trainer_client.integrations.nemo_rl.paced_dataloader
    # environment: PACED_URL, PACED_RUN (PACED_SEED, PACED_PROMPTS_PER_STEP,
    # PACED_PROBLEM_ID_KEY, PACED_SUCCESS_THRESHOLD, PACED_MODE)

NeMo-RL's MultipleDataloaderWrapper calls `custom_dataloader(data_iterators, dataloaders,
**records)` for each step's prompts and checks that it returned `num_prompts_per_step` of them.
`paced_dataloader` ignores the iterators: it draws the step's problems from paced (pinned,
leased) and returns those datums of the datasets behind `dataloaders`, collated by the
loaders' own collate_fn. A datum's problem id is `extra_env_info[PACED_PROBLEM_ID_KEY]`
("problem_id"), else "{task_name}/{idx}"; `problems_of(dataloaders)` uploads them.

NeMo-RL never feeds rewards back to a custom dataloader: its wrapper only has `set_records`,
whose records reach the function as keyword arguments at the next call. So the one line a
user adds in grpo_train, once the step's rewards are in `repeated_batch`, is

    dataloader.set_records(paced_records(repeated_batch, num_generations_per_prompt, step))

which posts each prompt's k of n at once (put it where repeated_batch still holds every group,
before a dynamic-sampling filter drops some) and tells the next call to draw step + 1, so a
resumed run draws what the first would have (without records the draws count on from
$PACED_START_STEP, default 0: set it to the step a run resumes at). NeMo-RL has no
per-generation error flag: a reward that is not a finite number is an errored attempt, counted
apart (attempts.py), and `errored=` takes a mask of the rows that errored.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from trainer_client.client import PacedClient
from trainer_client.integrations.attempts import GroupTally, OutcomeSender
from trainer_client.integrations.draws import SizedDraws


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"PACED_{name}", default)


def datum_problem_id(datum: Mapping[str, Any], key: str, task_name: str | None = None) -> str:
    info = datum.get("extra_env_info") or {}
    if info.get(key) is not None:
        return str(info[key])
    return f"{datum.get('task_name') or task_name}/{datum['idx']}"


def problems_of(dataloaders: Mapping[str, Any], key: str = "problem_id") -> list[dict[str, Any]]:
    """paced problems for the datasets behind NeMo-RL dataloaders: the messages' text as the
    prompt, extra_env_info's ground_truth as the answer."""
    problems = []
    for task_name, loader in dataloaders.items():
        for i in range(len(loader.dataset)):
            datum = loader.dataset[i]
            answer = (datum.get("extra_env_info") or {}).get("ground_truth")
            problems.append(
                {
                    "id": datum_problem_id(datum, key, task_name),
                    "prompt": "\n".join(str(m["content"]) for m in datum["message_log"]),
                    "answer": None if answer is None else str(answer),
                }
            )
    return problems


def _values(column: Any) -> list[Any]:
    return column.tolist() if hasattr(column, "tolist") else list(column)


def group_tallies(
    repeated_batch: Mapping[str, Any],
    num_generations_per_prompt: int,
    step: int,
    *,
    problem_id_key: str = "problem_id",
    success_threshold: float = 1.0,
    errored: Sequence[bool] | None = None,
) -> list[tuple[GroupTally, tuple[int, int]]]:
    """Each prompt's tally and its rows: NeMo-RL's repeated batch holds
    num_generations_per_prompt consecutive rows per prompt."""
    rewards = [float(r) for r in _values(repeated_batch["total_reward"])]
    infos, idx = list(repeated_batch["extra_env_info"]), _values(repeated_batch["idx"])
    tasks = list(repeated_batch.get("task_name") or [None] * len(rewards))
    failed = list(errored) if errored is not None else [False] * len(rewards)
    tallies = []
    for start in range(0, len(rewards), num_generations_per_prompt):
        end = min(start + num_generations_per_prompt, len(rewards))
        datum = {"extra_env_info": infos[start], "idx": idx[start], "task_name": tasks[start]}
        graded = [
            rewards[r] for r in range(start, end) if math.isfinite(rewards[r]) and not failed[r]
        ]
        tally = GroupTally(
            problem_id=datum_problem_id(datum, problem_id_key),
            passed=tuple(reward >= success_threshold for reward in graded),
            errored=end - start - len(graded),
            step=step,
        )
        tallies.append((tally, (start, end)))
    return tallies


class NemoCurriculum:
    """The state behind `paced_dataloader` for one (url, run): the dataset index, the draws
    and the outcome poster."""

    def __init__(self, url: str, run: str) -> None:
        self.client, self.run = PacedClient(url), run
        self.seed = int(env("SEED", "0") or 0)
        self.mode = env("MODE", "proportional") or "proportional"
        self.problem_id_key = env("PROBLEM_ID_KEY", "problem_id") or "problem_id"
        self.success_threshold = float(env("SUCCESS_THRESHOLD", "1.0") or 1.0)
        prompts = env("PROMPTS_PER_STEP")
        self.prompts_per_step = int(prompts) if prompts else None
        self.key_prefix = env("KEY_PREFIX", f"nemo-rl:{run}") or f"nemo-rl:{run}"
        # NeMo-RL gives a generation no id: a process token tells a resumed run's new rollouts
        # of a step from a record passed twice in this process.
        self.sender = OutcomeSender(self.client, run, key_prefix=f"{self.key_prefix}:records")
        self.process_token = uuid.uuid4().hex
        self.index: dict[str, tuple[str, int]] = {}  # problem id -> (task name, dataset row)
        self.draws = SizedDraws(
            self.client, run, key_prefix=self.key_prefix, seed=self.seed, mode=self.mode
        )
        self.next_draw = int(env("START_STEP", "0") or 0)

    def _build_index(self, dataloaders: Mapping[str, Any]) -> None:
        for task_name, loader in dataloaders.items():
            for row in range(len(loader.dataset)):
                pid = datum_problem_id(loader.dataset[row], self.problem_id_key, task_name)
                if pid in self.index:
                    raise ValueError(f"problem id {pid!r} is in two datums")
                self.index[pid] = (task_name, row)

    def observe_batch(
        self,
        repeated_batch: Mapping[str, Any],
        num_generations_per_prompt: int,
        step: int,
        errored: Sequence[bool] | None = None,
    ) -> list[GroupTally]:
        pairs = group_tallies(
            repeated_batch,
            num_generations_per_prompt,
            step,
            problem_id_key=self.problem_id_key,
            success_threshold=self.success_threshold,
            errored=errored,
        )
        identity = [f"{self.process_token}:{step}:{rows}" for _, rows in pairs]
        tallies = [tally for tally, _ in pairs]
        if tallies:
            self.sender.send(tallies, identity)
        return tallies

    def __call__(
        self, data_iterators: dict[str, Any], dataloaders: Mapping[str, Any], **records: Any
    ) -> tuple[Any, dict[str, Any]]:
        if not self.index:
            self._build_index(dataloaders)
        size = int(
            records.get("expected_num_prompts")
            or self.prompts_per_step
            or sum(loader.batch_size for loader in dataloaders.values())
        )
        step = int(records.get("paced_step", self.next_draw))
        batch = self.draws.draw(size, step)
        self.next_draw = step + 1
        unknown = [item.problem_id for item in batch.items if item.problem_id not in self.index]
        if len(batch.items) != size or unknown:
            raise RuntimeError(
                f"paced drew {len(batch.items)} problems for {size}; not in the datasets: {unknown}"
            )
        rows = [self.index[item.problem_id] for item in batch.items]
        datums = [dataloaders[task].dataset[row] for task, row in rows]
        collate = dataloaders[rows[0][0]].collate_fn
        return collate(datums), data_iterators


_CURRICULA: dict[tuple[str, str], NemoCurriculum] = {}


def curriculum() -> NemoCurriculum:
    """The curriculum of $PACED_URL / $PACED_RUN in this process."""
    url, run = env("URL"), env("RUN")
    if not url or not run:
        raise ValueError("paced's NeMo-RL adapter needs PACED_URL and PACED_RUN in the environment")
    if (url, run) not in _CURRICULA:
        _CURRICULA[(url, run)] = NemoCurriculum(url, run)
    return _CURRICULA[(url, run)]


def paced_dataloader(
    data_iterators: dict[str, Any], dataloaders: Mapping[str, Any], **records: Any
) -> tuple[Any, dict[str, Any]]:
    """data.custom_dataloader: this step's prompts, drawn by paced (see the module doc)."""
    return curriculum()(data_iterators, dataloaders, **records)


def paced_records(
    repeated_batch: Mapping[str, Any],
    num_generations_per_prompt: int,
    step: int,
    *,
    errored: Sequence[bool] | None = None,
) -> dict[str, Any]:
    """Post step `step`'s k of n per prompt; returns the records for `set_records`."""
    curriculum().observe_batch(repeated_batch, num_generations_per_prompt, step, errored)
    return {"paced_step": step + 1}
