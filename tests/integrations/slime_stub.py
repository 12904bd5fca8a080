"""slime, as far as paced's adapter meets it, written here (slime is not on the registry).

slime tests its plug-ins on CPU with stubs (its tests/plugin_contracts); these mirror the
checks that apply to the two flags paced uses, and the part of slime's default rollout
(`slime.rollout.sglang_rollout.generate_rollout_async`) that calls them:
- `--data-source-path`: the class takes `(self, args)` and `cls(make_args()).get_samples(1)`
  is a list, with slime's bare contract args; slime's DataSource ABC lists get_samples,
  add_samples, save, load and __len__.
- `--rollout-all-samples-process-path`: `fn(args, all_groups, data_source)`; called with a bare
  args object, `[[Sample(index=0)]]` and `object()`, it leaves `args.processed_group_count`.
- the rollout: draw `over_sampling_batch_size` groups at a time until `rollout_batch_size`
  groups pass the dynamic filter (check_reward_nonzero_std: drop groups whose rewards are all
  equal); every generated group, dropped or kept, goes to the all-samples function, which
  gets `data_source.get_samples` (a bound method); groups still in flight when the target is
  reached are aborted and, with partial_rollout, handed back through add_samples.
"""

from __future__ import annotations

import importlib
import inspect
import statistics
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


@dataclass
class Sample:
    """The fields of slime.utils.types.Sample that a data source and a rollout touch."""

    class Status(Enum):
        PENDING = "pending"
        COMPLETED = "completed"
        TRUNCATED = "truncated"
        ABORTED = "aborted"
        FAILED = "failed"

    group_index: int | None = None
    index: int | None = None
    prompt: str | list[dict[str, str]] = ""
    response: str = ""
    label: str | None = None
    reward: float | dict[str, Any] | None = None
    status: Status = Status.PENDING
    metadata: dict = field(default_factory=dict)
    remove_sample: bool = False


def load_function(path: str) -> Any:
    module_path, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_path), attr)


def install(monkeypatch) -> None:
    """Make `slime.utils.types.Sample` and `slime.utils.misc.load_function` importable."""
    modules = {name: types.ModuleType(name) for name in ("slime", "slime.utils")}
    modules["slime.utils.types"] = types.ModuleType("slime.utils.types")
    modules["slime.utils.types"].Sample = Sample  # type: ignore[attr-defined]
    modules["slime.utils.misc"] = types.ModuleType("slime.utils.misc")
    modules["slime.utils.misc"].load_function = load_function  # type: ignore[attr-defined]
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)


def make_args(**overrides: Any) -> Any:
    """slime's bare contract args."""
    args = types.SimpleNamespace(
        rollout_global_dataset=False,
        buffer_filter_path=None,
        n_samples_per_prompt=2,
        custom_rm_path=None,
        group_rm=False,
        rm_type=None,
        reward_key=None,
    )
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


DATA_SOURCE_METHODS = ("get_samples", "add_samples", "save", "load", "__len__")


def check_data_source_path(path: str) -> None:
    cls = load_function(path)
    assert tuple(inspect.signature(cls.__init__).parameters)[:2] == ("self", "args")
    assert all(callable(getattr(cls, name, None)) for name in DATA_SOURCE_METHODS)
    groups = cls(make_args()).get_samples(1)
    assert isinstance(groups, list)


def check_rollout_all_samples_process_path(path: str) -> None:
    fn = load_function(path)
    assert tuple(inspect.signature(fn).parameters)[:3] == ("args", "all_groups", "data_source")
    args = type("Args", (), {})()
    fn(args, [[Sample(index=0)]], object())
    assert hasattr(args, "processed_group_count")


def reward_value(sample: Sample, args: Any) -> float:
    """Sample.get_reward_value (a failed sample without a reward: 0)."""
    if sample.reward is None:
        return 0.0
    return sample.reward[args.reward_key] if args.reward_key else sample.reward  # type: ignore


def keeps_group(args: Any, group: list[Sample]) -> bool:
    """check_reward_nonzero_std: a group whose rewards all agree teaches nothing."""
    return statistics.pstdev([reward_value(s, args) for s in group]) > 0


def generate_rollout(
    args: Any, rollout_id: int, data_source: Any, grade: Callable[[Sample], None]
) -> dict[str, list[list[Sample]]]:
    """One rollout as slime's default drives the two plug-ins; returns the groups kept,
    every generated group, and the aborted ones."""
    process = load_function(args.rollout_all_samples_process_path)
    kept: list[list[Sample]] = []
    generated: list[list[Sample]] = []
    in_flight: list[list[Sample]] = []
    while len(kept) < args.rollout_batch_size:
        if not in_flight:
            in_flight = data_source.get_samples(args.over_sampling_batch_size)
        group = in_flight.pop(0)
        assert len(group) == args.n_samples_per_prompt
        for sample in group:
            grade(sample)
        generated.append(group)
        if keeps_group(args, group):
            kept.append(group)
    for group in in_flight:
        for sample in group:
            sample.status = Sample.Status.ABORTED
    if in_flight and args.partial_rollout:
        data_source.add_samples(in_flight)
    process(args, generated, data_source.get_samples)
    return {"kept": kept, "generated": generated, "aborted": in_flight}
