"""Schemathesis against a live server's OpenAPI: no 5xx, every response matches the schema.

Generated names rarely hit a resource that exists, so half the cases are pointed at a
dataset, run and problem created up front — that is where the deeper code paths are.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import Counter, defaultdict

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.reliability.servers import Server, setup_run

MAX_EXAMPLES = 25  # per operation and backend
EXAMPLES_RUN: Counter[str] = Counter()
STATUSES: defaultdict[str, Counter[int]] = defaultdict(Counter)
EXISTING = {"dataset": "d", "run": "r", "problem_id": "q1"}


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url, server_url = f"sqlite:///{workdir / 'paced.db'}", None
    else:
        server_url = request.getfixturevalue("postgres_server_url")
        url = create_pg_database(server_url)
    server = Server(database_url=url, workdir=workdir).start()
    setup_run(server.url, problems=5)
    yield request.param, server
    server.stop()
    if server_url:
        drop_pg_database(server_url, url)


def load_schema(tmp_db: str):
    """The app's OpenAPI document, loaded at collection so each operation is its own test.

    (schemathesis' lazy `from_fixture` loader does not work with pytest 9; the test below
    checks that the live server serves this same document.)
    """
    from service.app import create_app
    from service.settings import Settings

    # Building the app opens no connection; the file is never created.
    app = create_app(Settings(database_url=f"sqlite:///{tmp_db}"))
    document = app.openapi()
    app.state.ctx.engine.dispose()
    return document


OPENAPI = load_schema(os.path.join(tempfile.gettempdir(), "paced-fuzz-schema-only.db"))
schema = schemathesis.openapi.from_dict(OPENAPI)


def aim_at_existing_resources(case) -> None:
    """Deterministically (by the generated values) retarget half the cases at real names."""
    params = case.path_parameters or {}
    digest = hashlib.sha256(repr(sorted(params.items())).encode()).digest()
    if digest[0] % 2:
        for name in params.keys() & EXISTING.keys():
            params[name] = EXISTING[name]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # a fixed seed: the same cases on every run
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors_and_responses_match_the_schema(case, fuzz_server):
    backend, server = fuzz_server
    aim_at_existing_resources(case)
    EXAMPLES_RUN[backend] += 1
    response = case.call_and_validate(
        base_url=server.url, checks=[not_a_server_error, response_schema_conformance], timeout=30
    )
    STATUSES[backend][response.status_code // 100 * 100] += 1


def test_live_server_serves_the_fuzzed_schema_and_reports(fuzz_server):
    backend, server = fuzz_server
    assert httpx.get(f"{server.url}/openapi.json", timeout=10).json() == OPENAPI
    assert "Traceback" not in server.log()
    if EXAMPLES_RUN[backend]:  # the fuzz cases for this backend ran in this session
        # Not only 404s and 422s: generated requests also got through to the real work.
        assert STATUSES[backend][200] > 50 and STATUSES[backend][400] > 50, STATUSES[backend]
    print(
        f"\n[fuzz {backend}] examples_run={EXAMPLES_RUN[backend]} "
        f"max_per_operation={MAX_EXAMPLES} statuses={dict(STATUSES[backend])}"
    )
