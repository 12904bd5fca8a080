"""A live paced service on each backend (SQLite, and PostgreSQL when configured), one per
module: import `service_url` into a test module to run its tests on both."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from tests.conftest import BACKENDS
from trainer_client.client import PacedClient
from trainer_client.local.service import local_service


@pytest.fixture(scope="module", params=BACKENDS)
def service_url(request, tmp_path_factory):
    """The root conftest's migrated databases; each test makes its own run."""
    name = "pg_database_url" if request.param == "postgres" else "sqlite_database_url"
    database_url = request.getfixturevalue(name)
    with local_service(tmp_path_factory.mktemp("paced"), database_url=database_url) as url:
        yield url


def create_run(url: str, run: str, problems: Iterable[Mapping[str, Any]]) -> None:
    with PacedClient(url) as paced:
        paced.create_dataset(f"{run}-problems")
        paced.upsert_problems(f"{run}-problems", problems)
        paced.create_run(run, f"{run}-problems", estimator={"kind": "posterior"})


def stats(url: str, run: str) -> dict[str, tuple[int, int]]:
    """problem id -> (attempts, successes), for the problems with outcomes."""
    with PacedClient(url) as paced:
        weights = paced.iter_weights(run)
        return {i.problem_id: (int(i.attempts), int(i.successes)) for i in weights if i.attempts}
