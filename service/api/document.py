"""What the OpenAPI document says beyond what FastAPI generates from the routes: the limits
of this service's settings, the 422s that span fields or need the database (each operation
lists them as examples of its 422, built by the very checks that raise them), links from a
created dataset or run to the operations that take its name, and the batch's columnar body
as components (so every `$ref` resolves).

tests/reliability/test_fuzz.py reads the 422 examples back: a request the schema allows may
be refused only for a rule its operation documents here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from service.api import limits, schemas
from service.api.errors import NUL_IN_TEXT
from service.api.fast_json import BATCH_COLUMNS
from service.domain import curriculum, datasets, outcomes, overview, priors
from service.errors import DomainError
from service.settings import Settings

Detail = list[dict[str, Any]]


# ---- the rules beyond JSON Schema, as the checks themselves word them ----------------------


def _raised(check: Callable[[], object]) -> Detail:
    """The 422 detail a domain check raises (it must raise)."""
    try:
        check()
    except DomainError as exc:
        return list(exc.detail)
    raise AssertionError(f"{check} raised nothing")


def _body_errors(model: type[BaseModel], value: dict[str, Any], *prefix: str) -> Detail:
    """FastAPI's 422 detail for a body (or part of one) that `model` refuses."""
    try:
        model.model_validate(value)
    except ValidationError as exc:
        return [
            {"type": e["type"], "loc": ["body", *prefix, *e["loc"]], "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
    raise AssertionError(f"{model.__name__} accepted {value}")


def _plain(detail: Detail) -> Detail:
    """JSON-ready: locations as lists, no echoed input."""
    return [{**{k: v for k, v in e.items() if k != "input"}, "loc": list(e["loc"])} for e in detail]


RULES: dict[str, tuple[str, Callable[[], Detail]]] = {
    "successes_over_attempts": (
        "an outcome's successes exceed its attempts",
        lambda: _plain(
            schemas.successes_within_attempts(
                [{"problem_id": "q1", "attempts": 8, "successes": 9}]  # type: ignore[typeddict-item]
            )
        ),
    ),
    "nothing_attempted": (
        "an outcome with 0 attempts and 0 errored",
        lambda: _plain(
            schemas.successes_within_attempts(
                [{"problem_id": "q1", "attempts": 0, "successes": 0}]  # type: ignore[typeddict-item]
            )
        ),
    ),
    "unknown_outcome_problems": (
        "outcomes of problems the run's dataset does not have (nothing is applied)",
        lambda: outcomes.unknown_problem_ids(["q9"]).detail,
    ),
    "unknown_weight_problems": (
        "problem_ids the run's dataset does not have",
        lambda: curriculum.unknown_problem_ids(["q9"]).detail,
    ),
    "latest_with_half_life": (
        "window 'latest' with a half-life (a half-life decays rounds 'latest' does not keep)",
        lambda: _body_errors(
            schemas.EstimatorSpec, {"window": "latest", "half_life_steps": 50}, "estimator"
        ),
    ),
    "repeated_problem_ids": (
        "one problem id given twice in one upload (nothing is applied)",
        lambda: _raised(lambda: datasets.check_unique_ids(["q1", "q1", "q2"])),
    ),
    "unknown_prior_problems": (
        "priors of problems the run's dataset does not have (nothing is applied)",
        lambda: priors.unknown_problem_ids(["q9"]).detail,
    ),
    "repeated_prior_problems": (
        "one problem id given twice in one priors upload (nothing is applied)",
        lambda: _raised(lambda: datasets.check_unique_ids(["q1", "q1"], "items")),
    ),
    "lease_without_claimer": (
        "lease_s without a claimer (nothing would be leased)",
        lambda: _plain(schemas.LEASE_NEEDS_CLAIMER),
    ),
    "run_named_twice": (
        "a run named twice in runs or pair",
        lambda: _raised(lambda: overview.parse_run_list("runs", "a,a", at_least=2, at_most=8)),
    ),
    "runs_on_two_datasets": (
        "compared runs on different datasets",
        lambda: _raised(lambda: overview.check_one_dataset([("a", "math"), ("b", "code")])),
    ),
    "pair_outside_runs": (
        "a pair naming a run that is not compared",
        lambda: _raised(lambda: overview.check_pair_among(["a", "c"], ["a", "b"])),
    ),
    "nul_in_text": (
        "text holding NUL (\\u0000), which PostgreSQL cannot store (SQLite stores it)",
        lambda: [NUL_IN_TEXT],
    ),
}

# Which operations can answer which rule. NUL: every operation whose strings reach the
# database on PostgreSQL (bodies, names and ids in paths and queries).
TEXT = ("nul_in_text",)
OPERATION_RULES: dict[str, tuple[str, ...]] = {
    "create_dataset": TEXT,
    "get_dataset": TEXT,
    "upsert_problems": ("repeated_problem_ids", *TEXT),
    "get_problem": TEXT,
    "create_run": ("latest_with_half_life", *TEXT),
    "get_run": TEXT,
    "post_outcomes": (
        "successes_over_attempts",
        "nothing_attempted",
        "unknown_outcome_problems",
        *TEXT,
    ),
    "get_problem_stats": TEXT,
    "get_weights": ("unknown_weight_problems", *TEXT),
    "draw_batch": TEXT,
    "set_priors": ("repeated_prior_problems", "unknown_prior_problems", *TEXT),
    "copy_priors": TEXT,
    "rollout_queue": ("lease_without_claimer", *TEXT),
    "difficulty": TEXT,
    "get_history": TEXT,
    "get_overview": TEXT,
    "runs_summary": TEXT,
    "compare": ("run_named_twice", "runs_on_two_datasets", "pair_outside_runs", *TEXT),
    "problem_history": TEXT,
}


def document_rules(document: dict[str, Any]) -> None:
    """Each operation's 422 gets an example per rule it can refuse a schema-valid request for."""
    for operation in _operations(document):
        names = OPERATION_RULES.get(operation["operationId"], ())
        response = operation["responses"].get("422")
        if not names or response is None:
            continue
        examples = response["content"]["application/json"].setdefault("examples", {})
        for name in names:
            summary, detail = RULES[name]
            examples[name] = {"summary": summary, "value": {"detail": detail()}}
        response["description"] = (
            "Validation error: the request breaks its schema, or one of the rules beyond it "
            "given as examples here."
        )


# ---- links: a created dataset's or run's name into the operations that take it -------------

RUN_OPERATIONS = (
    "get_run",
    "post_outcomes",
    "get_problem_stats",
    "get_weights",
    "draw_batch",
    "rollout_queue",
    "difficulty",
    "get_history",
    "get_overview",
    "problem_history",
    "set_priors",
    "copy_priors",
)
DATASET_OPERATIONS = ("get_dataset", "upsert_problems", "get_problem")


def _links(source: str) -> dict[str, dict[str, Any]]:
    name = "$response.body#/name"
    if source == "create_run":
        links = {op: {"operationId": op, "parameters": {"path.run": name}} for op in RUN_OPERATIONS}
        links["runs_summary"] = {"operationId": "runs_summary", "parameters": {"query.name": name}}
        return links
    links = {
        op: {"operationId": op, "parameters": {"path.dataset": name}} for op in DATASET_OPERATIONS
    }
    links["create_run"] = {"operationId": "create_run", "requestBody": {"dataset": name}}
    links["runs_summary"] = {"operationId": "runs_summary", "parameters": {"query.dataset": name}}
    return links


def document_links(document: dict[str, Any]) -> None:
    """OpenAPI links from POST /v1/datasets and POST /v1/runs (201 created, 200 found)."""
    for operation in _operations(document):
        if operation["operationId"] in ("create_dataset", "create_run"):
            for status in ("200", "201"):
                operation["responses"][status]["links"] = _links(operation["operationId"])


# ---- the batch's columnar body ---------------------------------------------------------------


def document_batch_columns(document: dict[str, Any]) -> None:
    """pydantic puts BatchColumns' parts under its own `$defs`, which do not resolve inside
    the OpenAPI document: move them into components and point the response there."""
    components = document["components"]["schemas"]
    template = "#/components/schemas/{model}"
    schema = schemas.BatchColumns.model_json_schema(ref_template=template)
    components.update(schema.pop("$defs", {}))
    components["BatchColumns"] = schema
    for operation in _operations(document):
        if operation["operationId"] == "draw_batch":
            content = operation["responses"]["200"]["content"]
            for media_type, body in content.items():
                if media_type == BATCH_COLUMNS:
                    body["schema"] = {"$ref": template.format(model="BatchColumns")}


# ---- everything ------------------------------------------------------------------------------


def complete_document(document: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The document as the service publishes it (in place; returned for convenience)."""
    limits.document_limits(document, settings)
    document_rules(document)
    document_links(document)
    document_batch_columns(document)
    return document


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        op for path in document["paths"].values() for op in path.values() if "operationId" in op
    ]
