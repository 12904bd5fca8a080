"""Schemathesis against a live server's OpenAPI, every check on, per operation and stateful
(sequences of calls that feed one response's names into the next request): no 5xx, every
status documented, every response matching the schema, Allow headers naming every method,
schema-valid requests accepted, invalid ones refused.

Generated names rarely hit a resource that exists, so half the cases are pointed at a
dataset, run and problem created up front — that is where the deeper code paths are.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.reliability import fuzz_checks  # noqa: F401 - registers its check with schemathesis
from tests.reliability.servers import reliability_server, setup_run

MAX_EXAMPLES = 25  # per operation and backend
STATEFUL_EXAMPLES = 30  # scenarios per backend
EXAMPLES_RUN: Counter[str] = Counter()
STATUSES: defaultdict[str, Counter[int]] = defaultdict(Counter)
ROOT = Path(__file__).resolve().parents[2]
EXISTING = {"dataset": "d", "run": "r", "problem_id": "q1"}


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url, server_url = f"sqlite:///{workdir / 'paced.db'}", None
    else:
        server_url = request.getfixturevalue("postgres_server_url")
        url = create_pg_database(server_url)
    server = reliability_server(url, workdir).start()
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
schema = schemathesis.openapi.from_dict(copy.deepcopy(OPENAPI))  # it adds links in place


def aim_at_existing_resources(case) -> None:
    """Deterministically (by the generated values) retarget half the cases at real names."""
    params = case.path_parameters or {}
    digest = hashlib.sha256(repr(sorted(params.items())).encode()).digest()
    if digest[0] % 2:
        for name in params.keys() & EXISTING.keys():
            params[name] = EXISTING[name]


load_all_checks()
# Every check schemathesis has (status codes documented, Allow headers, negative data refused,
# use after free, ...), with positive_data_acceptance less the rules of fuzz_checks.py.
ALL_CHECKS = [check for check in CHECKS.get_all() if check is not positive_data_acceptance]


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
    response = case.call_and_validate(base_url=server.url, timeout=30, checks=ALL_CHECKS)
    STATUSES[backend][response.status_code // 100 * 100] += 1


def test_stateful_scenarios_pass_every_check(fuzz_server):
    """The stateful phase through schemathesis' own engine (`st run --phases stateful`):
    scenarios follow the links it infers (a created run's name into its batches, outcomes, ...).
    Hypothesis' state-machine runner in-process calls a live server's changing state "flaky
    data generation"; the engine runs the same scenarios and reports failures instead."""
    backend, server = fuzz_server
    hooks = "tests.reliability.fuzz_checks"  # registers schema_valid_requests_are_accepted
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": hooks}
    command = [str(Path(sys.executable).with_name("st")), "run", f"{server.url}/openapi.json"]
    command += ["--phases", "stateful", "--checks", "all", "--exclude-checks"]
    command += ["positive_data_acceptance", "--max-examples", str(STATEFUL_EXAMPLES)]
    command += ["--generation-deterministic", "--no-color", "--request-timeout", "30"]
    # In the server's workdir: schemathesis keeps a crash cache (.schemathesis/) where it runs.
    done = subprocess.run(
        command, env=env, cwd=server.workdir, capture_output=True, text=True, timeout=400
    )
    summary = done.stdout[-3000:]
    assert done.returncode == 0, summary
    scenarios = re.search(r"Scenarios:\s+(\d+)", done.stdout)
    assert scenarios and int(scenarios.group(1)) >= 10, summary
    print(f"\n[fuzz stateful {backend}] scenarios={scenarios.group(1)}")


def test_the_fuzzer_runs_every_check_it_has():
    names = {check.__name__ for check in ALL_CHECKS}
    assert "schema_valid_requests_are_accepted" in names and "positive_data_acceptance" not in names
    assert len(ALL_CHECKS) >= 14, names
    assert {"status_code_conformance", "allow_header_conformance", "unsupported_method"} <= names
    assert {"negative_data_rejection", "use_after_free", "response_schema_conformance"} <= names


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
