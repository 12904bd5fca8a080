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
import tempfile
from collections import Counter, defaultdict

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import BACKENDS, create_pg_database, drop_pg_database
from tests.reliability.servers import Server, setup_run

MAX_EXAMPLES = 25  # per operation and backend
STATEFUL_EXAMPLES = 30  # scenarios per backend
# Rules that span fields or need the database, which JSON Schema cannot state: a request the
# schema allows may still be refused with 422 for these (and only these) reasons.
RULES_BEYOND_THE_SCHEMA = (
    "name 2 to ",  # /v1/compare: runs and pair count their names...
    "each run may be named only once",  # ...which must differ...
    "runs are on different datasets",  # ...and share a dataset
    "both runs of the pair must be among",
    "lease_s needs a claimer",  # rollout-queue
    "Value error, window 'latest' keeps one round only",  # estimator: window vs half-life
    "Value error, successes (",  # outcomes: successes <= attempts
    "unknown problem id(s)",  # weights and outcomes of ids the dataset does not have
    "text may not contain NUL",  # PostgreSQL text cannot hold \\u0000
    "invalid cursor: pass back next_cursor",  # a cursor is one the service handed out
)
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
schema = schemathesis.openapi.from_dict(copy.deepcopy(OPENAPI))  # it adds links in place


def aim_at_existing_resources(case) -> None:
    """Deterministically (by the generated values) retarget half the cases at real names."""
    params = case.path_parameters or {}
    digest = hashlib.sha256(repr(sorted(params.items())).encode()).digest()
    if digest[0] % 2:
        for name in params.keys() & EXISTING.keys():
            params[name] = EXISTING[name]


def _float_rounding(error: dict) -> bool:
    """The generator computes near 2**63 and 2**64 in floats: a bound exceeded by less than
    the rounding of a double is the generator's, not the schema's."""
    bound = (error.get("ctx") or {}).get("le", (error.get("ctx") or {}).get("ge"))
    value = error.get("input")
    if not isinstance(bound, int) or not isinstance(value, int):
        return False
    return abs(value - bound) <= abs(bound) * 2.0**-52


def _beyond_the_schema(error: dict) -> bool:
    msg = error.get("msg", "")
    return any(rule in msg for rule in RULES_BEYOND_THE_SCHEMA) or _float_rounding(error)


def schema_valid_requests_are_accepted(ctx, response, case):
    """schemathesis' positive_data_acceptance, less the documented RULES_BEYOND_THE_SCHEMA."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        if response.status_code == 422:
            detail = response.json().get("detail")
            if isinstance(detail, list) and detail and all(map(_beyond_the_schema, detail)):
                return None
        raise


load_all_checks()
# Every check schemathesis has (status codes documented, Allow headers, negative data refused,
# use after free, ...), with positive_data_acceptance less the rules above.
ALL_CHECKS = [check for check in CHECKS.get_all() if check is not positive_data_acceptance]
ALL_CHECKS.append(schema_valid_requests_are_accepted)


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


class Workflow(schema.as_state_machine()):  # type: ignore[misc]
    """Scenarios that chain operations through the links schemathesis infers (a created run's
    name into its batches, outcomes, ...), every check on each response."""

    base_url = ""

    def before_call(self, case):
        aim_at_existing_resources(case)

    def get_call_kwargs(self, case):
        return {"base_url": self.base_url, "timeout": 30}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        STATEFUL_STATUSES[response.status_code // 100 * 100] += 1
        case.validate_response(response, recorder=self.recorder, checks=ALL_CHECKS)


STATEFUL_STATUSES: Counter[int] = Counter()


def test_stateful_scenarios_pass_every_check(fuzz_server):
    backend, server = fuzz_server
    STATEFUL_STATUSES.clear()
    Workflow.base_url = server.url
    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            stateful_step_count=6,
            suppress_health_check=list(HealthCheck),
        )
    )
    assert STATEFUL_STATUSES[200] > 10, STATEFUL_STATUSES  # the scenarios reached real work
    print(f"\n[fuzz stateful {backend}] statuses={dict(STATEFUL_STATUSES)}")


def test_the_fuzzer_runs_every_check_it_has():
    names = {check.__name__ for check in ALL_CHECKS}
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
