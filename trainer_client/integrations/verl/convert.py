"""verl's parquet rows as a paced dataset, and the one rule for a row's problem id.

A verl data row (what `examples/data_preprocess/*.py` in verl write) is

    {data_source, prompt: [chat messages], ability,
     reward_model: {style, ground_truth}, extra_info: {split, index, ...}}

and its paced problem id is `extra_info.problem_id` when the row has one, else
`extra_info.index` (as a string): the dataset (`PacedDataset`), the replay buffer
(`PacedReplayBuffer`) and this converter all read it with `problem_id_of`, so an uploaded
problem, a drawn one and a graded group name the same problem.

    python -m trainer_client.integrations.verl.convert train.parquet \\
        --url http://127.0.0.1:8000 --dataset gsm8k --run gsm8k-run1

Nothing here imports verl, Ray or torch (pyarrow reads the files).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from trainer_client.client import PacedClient
from trainer_client.errors import NotFound


def problem_id_of(extra_info: Mapping[str, Any] | None) -> str:
    """The paced id of a verl row: extra_info.problem_id, else extra_info.index."""
    info = extra_info or {}
    for field in ("problem_id", "index"):
        value = info.get(field)
        if value is not None and str(value) != "":
            return str(value)
    raise ValueError("a verl row needs extra_info.problem_id or extra_info.index (its paced id)")


def _text(content: Any) -> str:
    """A message's text: verl allows a string or a list of typed parts (multimodal)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            part.get("text", "") if isinstance(part, Mapping) else str(part) for part in content
        )
    return str(content)


def prompt_text(messages: Sequence[Mapping[str, Any]] | str) -> str:
    """What a person reads as the problem: the last user message (the whole chat is kept in
    the metadata)."""
    if isinstance(messages, str):
        return messages
    users = [m for m in messages if m.get("role") == "user"]
    chosen = users[-1:] or list(messages)
    return "\n\n".join(_text(m.get("content", "")) for m in chosen)


def _answer(ground_truth: Any) -> str | None:
    if ground_truth is None or isinstance(ground_truth, str):
        return ground_truth
    return orjson.dumps(ground_truth, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def verl_row_to_problem(row: Mapping[str, Any]) -> dict[str, Any]:
    """One verl row as a paced problem {id, prompt, answer, metadata}."""
    reward_model = row.get("reward_model") or {}
    extra_info = row.get("extra_info") or {}
    metadata = {
        "data_source": row.get("data_source"),
        "ability": row.get("ability"),
        "reward_style": reward_model.get("style"),
        "split": extra_info.get("split"),
        "messages": list(row.get("prompt") or []),
    }
    return {
        "id": problem_id_of(extra_info),
        "prompt": prompt_text(row.get("prompt") or ""),
        "answer": _answer(reward_model.get("ground_truth")),
        "metadata": {k: v for k, v in metadata.items() if v is not None},
    }


def verl_rows_to_problems(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every row as a problem; two rows with one id are an error (paced would keep only the
    last, and the dataset could not tell which row a draw means)."""
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows):
        problem = verl_row_to_problem(row)
        if problem["id"] in seen:
            raise ValueError(
                f"rows {seen[problem['id']]} and {number} share the problem id {problem['id']!r}"
                " (extra_info.problem_id / extra_info.index must be unique)"
            )
        seen[problem["id"]] = number
        problems.append(problem)
    return problems


def read_parquet_rows(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """The rows of verl parquet files, in file order (pyarrow: verl's own reader's base)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for path in paths:
        rows.extend(pq.read_table(str(path)).to_pylist())
    return rows


@dataclass(frozen=True)
class Upload:
    dataset: str
    problems: int
    inserted: int
    updated: int
    run: str | None


def upload_verl_parquet(
    client: PacedClient | str,
    dataset: str,
    paths: Sequence[str | Path],
    *,
    run: str | None = None,
    description: str | None = None,
) -> Upload:
    """Upsert the problems of verl parquet files into `dataset` (created if missing) and,
    with `run`, create that run on it unless it exists. Re-running it is harmless."""
    paced = PacedClient(client) if isinstance(client, str) else client
    problems = verl_rows_to_problems(read_parquet_rows(paths))
    try:
        paced.get_dataset(dataset)
    except NotFound:
        paced.create_dataset(dataset, description)
    result = paced.upsert_problems(dataset, problems)
    if run is not None:
        try:
            paced.get_run(run)
        except NotFound:
            paced.create_run(run, dataset)
    return Upload(dataset, len(problems), result.inserted, result.updated, run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload verl parquet files as a paced dataset")
    parser.add_argument("files", nargs="+", help="verl parquet files (train split)")
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--run", default=None, help="also create this run on the dataset")
    parser.add_argument("--token", default=None)
    args = parser.parse_args(argv)
    with PacedClient(args.url, token=args.token) as paced:
        upload = upload_verl_parquet(paced, args.dataset, args.files, run=args.run)
    print(orjson.dumps(upload.__dict__).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
