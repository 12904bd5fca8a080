"""A verl training dataset that serves paced's draws (data.custom_cls).

verl builds `data.custom_cls.{path,name}` with (data_files, tokenizer, config, processor,
max_samples) for the training files *and* the validation files
(verl/trainer/ppo/utils.py::create_rl_dataset). `PacedDataset` is verl's RLHFDataset (the
same parquet reading, prompt-length filter and row format) whose training items follow
paced: item i of epoch e is slot (e·len + i) mod size of draw (e·len + i) // size, each
draw pinned under its key (`draws.PacedDraws`), so every resumed run, retry or rank gets the
same problems. Validation files are served as they are, in order.

The index has to come in order (data.shuffle=False: paced decides the order) and in the
process that asks paced (data.dataloader_num_workers=0 is what verl's own curriculum
sampler needed too). A new epoch is seen when the index goes back; the epoch and the last
index are the dataset's state, which verl's StatefulDataLoader checkpoints with it.
"""

from __future__ import annotations

from typing import Any

from verl.utils.dataset.rl_dataset import RLHFDataset

from trainer_client.client import PacedClient
from trainer_client.integrations.draws import PacedDraws
from trainer_client.integrations.verl.convert import problem_id_of
from trainer_client.integrations.verl.settings import DatasetSettings

DRAWS_KEPT = 4  # draws cached: the one being served and a few behind it


class PacedDataset(RLHFDataset):
    def __init__(
        self,
        data_files: Any,
        tokenizer: Any,
        config: Any,
        processor: Any = None,
        max_samples: int = -1,
    ) -> None:
        super().__init__(data_files, tokenizer, config, processor, max_samples)
        self.serves_draws = _is_training(data_files, config)
        self.epoch, self.last_index = 0, -1
        self._draws: PacedDraws | None = None
        self._drawn: dict[int, list[str]] = {}
        if not self.serves_draws:
            return
        if config.get("shuffle", True):
            raise ValueError("data.shuffle must be False with PacedDataset: paced orders the items")
        self.settings = DatasetSettings.from_config(config.get("paced"))
        self.size = self.settings.size or int(config.get("train_batch_size"))
        self.rows = _rows_by_problem(self.dataframe["extra_info"])
        whole_draws = max(1, len(self.dataframe) // self.size) * self.size
        self.length = self.settings.length or whole_draws

    def __len__(self) -> int:
        return self.length if self.serves_draws else super().__len__()

    @property
    def draws(self) -> PacedDraws:
        if self._draws is None:  # made on first use: a pickled copy makes its own client
            s = self.settings
            self._draws = PacedDraws(
                PacedClient(s.url, token=s.token),
                s.run,
                self.size,
                seed=s.seed,
                mode=s.mode,
                fill=s.fill,
                lease_ttl_s=s.lease_ttl_s,
                key_prefix=s.key_prefix,
            )
        return self._draws

    def problem_at(self, position: int) -> str:
        """The problem id at a position of the run's item sequence."""
        index, slot = divmod(position, self.size)
        if index not in self._drawn:
            self._drawn[index] = [item.problem_id for item in self.draws.draw(index).items]
            for old in sorted(self._drawn)[:-DRAWS_KEPT]:
                del self._drawn[old]
        drawn = self._drawn[index]
        if slot >= len(drawn):
            raise IndexError(f"paced draw {index} has {len(drawn)} items, not {self.size}")
        return drawn[slot]

    def __getitem__(self, item: int) -> dict:
        if not self.serves_draws:
            return super().__getitem__(item)
        if item <= self.last_index:
            self.epoch += 1
        self.last_index = item
        problem_id = self.problem_at(self.epoch * self.length + item)
        if problem_id not in self.rows:
            raise KeyError(
                f"paced drew problem {problem_id!r}, which no row of data.train_files has"
                " (upload these files: trainer_client.integrations.verl.convert)"
            )
        return super().__getitem__(self.rows[problem_id])

    # StatefulDataLoader saves these with its own state (torchdata's Stateful protocol).
    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "last_index": self.last_index}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.last_index = int(state["epoch"]), int(state["last_index"])

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        return {**state, "_draws": None}


def _as_list(files: Any) -> list[str]:
    return [str(f) for f in ([files] if isinstance(files, str) else (files or []))]


def _is_training(data_files: Any, config: Any) -> bool:
    """verl passes one data config for both splits: the files tell them apart."""
    mine = _as_list(data_files)
    return mine != _as_list(config.get("val_files")) or mine == _as_list(config.get("train_files"))


def _rows_by_problem(extra_infos: Any) -> dict[str, int]:
    rows: dict[str, int] = {}
    for row, extra_info in enumerate(extra_infos):
        problem_id = problem_id_of(extra_info)
        if problem_id in rows:
            raise ValueError(f"rows {rows[problem_id]} and {row} share problem id {problem_id!r}")
        rows[problem_id] = row
    return rows
