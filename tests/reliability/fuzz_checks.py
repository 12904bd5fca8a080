"""The one check of tests/reliability/test_fuzz.py that is not schemathesis' own, registered
with schemathesis (the stateful phase loads this module as SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

# Rules that span fields or need the database, which JSON Schema cannot state: a request the
# schema allows may still be refused with 422 for these (and only these) reasons.
RULES_BEYOND_THE_SCHEMA = (
    "name 2 to ",  # /v1/compare: runs and pair count their names...
    "each run may be named only once",  # ...which must differ...
    "runs are on different datasets",  # ...and share a dataset
    "both runs of the pair must be among",
    "lease_s needs a claimer",  # rollout-queue
    "Value error, window 'latest' keeps one round only",  # estimator: window vs half-life
    "Value error, successes (",  # outcomes: successes <= attempts...
    "Value error, an outcome needs attempts",  # ...and something attempted, graded or errored
    "unknown problem id(s)",  # weights and outcomes of ids the dataset does not have
    "given more than once in one upload",  # problems: an id twice in one upload
    "text may not contain NUL",  # PostgreSQL text cannot hold \\u0000
    "invalid cursor: pass back next_cursor",  # a cursor is one the service handed out
)


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


@schemathesis.check
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
