"""The client's hand-written models (trainer_client/models.py, _batch_format.py) against the
live service's /openapi.json, operation by operation (each client call is matched to the
operation its method and path reach):

- read: every field the client's model of a response declares exists in that operation's
  response schema, and every JSON type the service may send there is one the client accepts
  (an int field where the service sends numbers, or a non-nullable one where it may send null,
  fails);
- sent: every field and value the client puts in a request body or query is one the
  operation takes (the service refuses unknown fields with a 422);
- enums: every Literal of the client equals the service's enum at that place; where the
  client reads an enum as a plain str (so a newer service's value does not break it), its
  known values (models.ZONES, ROLLOUT_REASONS, BATCH_SOURCES) equal the service's.

Renaming a field or an enum value on one side only fails here.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from typing_extensions import is_typeddict  # also knows typing_extensions' TypedDicts

from trainer_client import _endpoints as api
from trainer_client import models, priors
from trainer_client._batch_format import BATCH_COLUMNS, FIELDS, BatchItem, _ColumnBody

ALL_KINDS = frozenset({"string", "integer", "number", "boolean", "array", "object", "null"})
# The JSON types a client annotation accepts (pydantic's lax mode: a float takes an integer).
SCALAR_KINDS: dict[Any, set[str]] = {
    str: {"string"},
    datetime: {"string"},
    int: {"integer"},
    float: {"integer", "number"},
    bool: {"boolean"},
    type(None): {"null"},
}
# Response enums the client reads as plain str: where they are, and the values it knows.
KNOWN_VALUES: dict[str, tuple[str, ...]] = {
    "ProblemStats.zone": models.ZONES,
    "ProblemHistory.stats.zone": models.ZONES,
    "RolloutQueue.items[].reason": models.ROLLOUT_REASONS,
    "Batch.items[].source": models.BATCH_SOURCES,
    "batch columns.columns.source[]": models.BATCH_SOURCES,
}


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from service import migrate
    from service.app import create_app
    from service.settings import Settings

    url = f"sqlite:///{tmp_path_factory.mktemp('openapi') / 'paced.db'}"
    migrate.upgrade(url)
    app = create_app(Settings(database_url=url))
    with TestClient(app) as client:
        response = client.get("/openapi.json")  # what a running service publishes
    app.state.ctx.engine.dispose()
    assert response.status_code == 200
    return response.json()


# ---- the two sides' types ---------------------------------------------------------------------


def variants(annotation: Any) -> list[Any]:
    """The members of a union (X | None is [X, NoneType]); anything else is itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for arg in get_args(annotation) for m in variants(arg)]
    return [annotation]


def client_kinds(annotation: Any) -> set[str]:
    kinds: set[str] = set()
    for member in variants(annotation):
        origin = get_origin(member)
        if member is Any:
            return set(ALL_KINDS)
        if origin is Literal:
            kinds |= {kind_of(value) for value in get_args(member)}
        elif origin is list:
            kinds.add("array")
        elif origin is dict or member is dict or is_record(member):
            kinds.add("object")
        else:
            kinds |= SCALAR_KINDS[member]
    return kinds


def is_record(tp: Any) -> bool:
    """A class whose fields the client reads by name (models, TypedDicts, BatchItem)."""
    return isinstance(tp, type) and (issubclass(tp, (BaseModel, BatchItem)) or is_typeddict(tp))


def client_fields(tp: type) -> dict[str, Any]:
    if issubclass(tp, BaseModel):
        return {f.alias or name: f.annotation for name, f in tp.model_fields.items()}
    hints = get_type_hints(tp)
    return {name: hints[name] for name in FIELDS} if tp is BatchItem else hints


def literal_values(annotation: Any) -> set[Any]:
    return {v for m in variants(annotation) if get_origin(m) is Literal for v in get_args(m)}


def kind_of(value: Any) -> str:
    for tp, kind in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, tp):
            return kind
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


@dataclass
class Schemas:
    """The document, and the schema a `#/$defs/...` reference is relative to (the columnar
    batch schema is embedded whole, with its own $defs)."""

    document: dict[str, Any]
    root: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            parts = schema["$ref"].removeprefix("#/").split("/")
            node: Any = self.root if parts[0] == "$defs" and self.root else self.document
            for part in parts:
                node = node[part]
            schema = node
        return schema

    def members(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        schema = self.resolve(schema)
        alternatives = schema.get("anyOf") or schema.get("oneOf")
        if alternatives:
            return [m for alt in alternatives for m in self.members(alt)]
        return [schema]

    def kinds(self, schema: dict[str, Any]) -> set[str]:
        kinds: set[str] = set()
        for member in self.members(schema):
            if "type" in member:
                kind = member["type"]
                kinds |= set(kind) if isinstance(kind, list) else {kind}
            elif "enum" in member:
                kinds |= {kind_of(value) for value in member["enum"]}
            else:
                kinds |= ALL_KINDS  # {} takes anything
        return kinds

    def enum(self, schema: dict[str, Any]) -> set[Any]:
        return {v for m in self.members(schema) for v in m.get("enum", [])}

    def member(self, schema: dict[str, Any], kind: str) -> dict[str, Any] | None:
        return next((m for m in self.members(schema) if m.get("type") == kind), None)


# ---- reading: the client's model of a response against the response schema ----------------


def check_read(s: Schemas, annotation: Any, schema: dict[str, Any], where: str) -> None:
    sent, taken = s.kinds(schema), client_kinds(annotation)
    if not sent <= taken:
        s.problems.append(
            f"{where}: the service sends {sorted(sent)}, the client takes {sorted(taken)}"
        )
    check_enum(s, annotation, schema, where)
    for member in variants(annotation):
        origin = get_origin(member)
        if is_record(member) and (obj := s.member(schema, "object")) is not None:
            check_record_read(s, member, obj, where)
        elif origin is list and (array := s.member(schema, "array")) is not None:
            check_read(s, get_args(member)[0], array.get("items", {}), f"{where}[]")
        elif origin is dict and (obj := s.member(schema, "object")) is not None:
            value_type = get_args(member)[1]
            for name, prop in obj.get("properties", {}).items():
                check_read(s, value_type, prop, f"{where}.{name}")
            if isinstance(obj.get("additionalProperties"), dict):
                check_read(s, value_type, obj["additionalProperties"], f"{where}.*")


def check_record_read(s: Schemas, tp: type, obj: dict[str, Any], where: str) -> None:
    properties = obj.get("properties", {})
    for name, annotation in client_fields(tp).items():
        if name not in properties:
            s.problems.append(f"{where}.{name}: the client reads it, the service does not send it")
        else:
            check_read(s, annotation, properties[name], f"{where}.{name}")


def check_enum(s: Schemas, annotation: Any, schema: dict[str, Any], where: str) -> None:
    theirs, ours = s.enum(schema), literal_values(annotation)
    if ours and ours != theirs:
        s.problems.append(
            f"{where}: client Literal {sorted(ours)} != service enum {sorted(theirs)}"
        )
    elif theirs and not ours and str in variants(annotation):
        known = KNOWN_VALUES.get(where)
        if known is None:
            s.problems.append(f"{where}: service enum {sorted(theirs)} the client does not list")
        elif set(known) != theirs:
            s.problems.append(f"{where}: client knows {sorted(known)}, service {sorted(theirs)}")


# ---- sending: the client's request bodies and queries against the request schema -----------


def check_sent(s: Schemas, value: Any, schema: dict[str, Any], where: str) -> None:
    kind, taken = kind_of(value), s.kinds(schema)
    if not (kind in taken or (kind == "integer" and "number" in taken)):
        s.problems.append(f"{where}: the client sends {kind}, the service takes {sorted(taken)}")
        return
    allowed = s.enum(schema)
    if allowed and value not in allowed:
        s.problems.append(f"{where}: the client sends {value!r}, not in {sorted(allowed)}")
    if isinstance(value, dict) and (obj := s.member(schema, "object")) is not None:
        properties = obj.get("properties", {})
        for name, item in value.items():
            if name in properties:
                check_sent(s, item, properties[name], f"{where}.{name}")
            elif obj.get("additionalProperties") in (None, False):
                s.problems.append(f"{where}.{name}: the client sends it, the service refuses it")
    elif isinstance(value, list) and (array := s.member(schema, "array")) is not None:
        for item in value:
            check_sent(s, item, array.get("items", {}), f"{where}[]")


def check_sent_model(s: Schemas, tp: type[BaseModel], schema: dict[str, Any], where: str) -> None:
    """A request model's every field and Literal against the operation's request schema."""
    obj = s.member(schema, "object")
    assert obj is not None, where
    for name, annotation in client_fields(tp).items():
        prop = obj.get("properties", {}).get(name)
        if prop is None:
            s.problems.append(f"{where}.{name}: the client sends it, the service refuses it")
            continue
        sendable = client_kinds(annotation) - {"null"}  # None is left out of what is sent
        taken = s.kinds(prop) | ({"integer"} if "number" in s.kinds(prop) else set())
        if not sendable <= taken:
            s.problems.append(f"{where}.{name}: client {sorted(sendable)}, service {sorted(taken)}")
        theirs, ours = s.enum(prop), literal_values(annotation)
        if ours != theirs:
            s.problems.append(f"{where}.{name}: client {sorted(ours)} != service {sorted(theirs)}")


# ---- the client's calls and the operations they reach ------------------------------------------


@dataclass(frozen=True)
class Read:
    call: api.Call[Any]
    model: type
    envelope: str | None = None  # "items": the client reads a list out of body["items"]


LEASE = {"claimer": "w1", "ttl_s": 30.0}
# Every api_* builder of the client (with every optional argument given) and how it reads.
READS: dict[str, Callable[[], Read]] = {
    "api_health": lambda: Read(api.api_health(), models.Health),
    "api_list_datasets": lambda: Read(api.api_list_datasets(), models.Dataset, "items"),
    "api_create_dataset": lambda: Read(api.api_create_dataset("d", "about"), models.Dataset),
    "api_get_dataset": lambda: Read(api.api_get_dataset("d"), models.Dataset),
    "api_upsert_problems": lambda: Read(
        api.api_upsert_problems(
            "d", [{"id": "p", "prompt": "1+1", "answer": "2", "metadata": {"k": 1}}], 10
        )[0],
        models.UpsertResult,
    ),
    "api_get_problem": lambda: Read(api.api_get_problem("d", "a/b"), models.Problem),
    "api_list_runs": lambda: Read(api.api_list_runs(), models.Run, "items"),
    "api_create_run": lambda: Read(
        api.api_create_run(
            "r", "d", {"alpha": 2, "beta": 0.5}, {"kind": "posterior", "half_life_steps": 5}
        ),
        models.Run,
    ),
    "api_get_run": lambda: Read(api.api_get_run("r"), models.Run),
    "api_post_outcomes": lambda: Read(
        api.api_post_outcomes(
            "r", [{"problem_id": "p", "attempts": 4, "successes": 1, "step": 3}], "key", 10
        )[0],
        models.OutcomesAccepted,
    ),
    "api_get_problem_stats": lambda: Read(api.api_get_problem_stats("r", "p"), models.ProblemStats),
    "api_weights": lambda: Read(api.api_weights("r", ["p"], "10", 5), models.WeightsPage),
    "api_batch": lambda: Read(
        api.api_batch("r", 4, 7, "thompson", "unseen", "k", LEASE, True, 0.25), models.Batch
    ),
    "api_rollout_queue": lambda: Read(
        api.api_rollout_queue("r", 5, "w1", 30.0, True), models.RolloutQueue
    ),
    "api_difficulty": lambda: Read(api.api_difficulty("r", 10), models.Difficulty),
    "api_history": lambda: Read(api.api_history("r"), models.History),
    "api_overview": lambda: Read(api.api_overview("r", 20, 10), models.Overview),
    "api_runs_summary": lambda: Read(api.api_runs_summary("d", "r*"), models.RunSummary, "items"),
    "api_compare": lambda: Read(api.api_compare(["a", "b"], ["b", "a"], 10, 5), models.Comparison),
    "api_problem_history": lambda: Read(api.api_problem_history("r", "p"), models.ProblemHistory),
    "api_set_priors": lambda: Read(
        api.api_set_priors(
            "r", [{"problem_id": "p", "pass_rate": 0.5, "pseudo_attempts": 4}], 8.0, True, 10
        )[0],
        priors.PriorsSet,
    ),
    "api_copy_priors": lambda: Read(api.api_copy_priors("r", "o", 8.0, True), priors.PriorsSet),
}
# The client's request models and the request schemas they are sent as.
SENT_MODELS = {
    "ProblemIn": models.Problem,
    "OutcomeIn": models.Outcome,
    "Kernel": models.Kernel,
    "EstimatorSpec": models.Estimator,
    "Lease": models.Lease,
    "PriorIn": priors.PriorItem,
}


def operation(document: dict[str, Any], call: api.Call[Any]) -> dict[str, Any]:
    """The one operation the call's method and path reach."""
    found = [
        item[call.method.lower()]
        for template, item in document["paths"].items()
        if call.method.lower() in item
        and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), call.path)
    ]
    assert len(found) == 1, (call.method, call.path, len(found))
    return found[0]


def success_content(op: dict[str, Any]) -> dict[str, Any]:
    """The body of the operation's success. A get-or-create documents two (201 created, 200
    found): the client reads both with one model, so they must be the same schema."""
    contents = [r["content"] for code, r in op["responses"].items() if code.startswith("2")]
    assert contents and all(c == contents[0] for c in contents), op["operationId"]
    return contents[0]


def test_every_client_call_is_listed_here():
    builders = {name for name in dir(api) if name.startswith("api_")} - {"api_limits"}
    assert builders == set(READS)  # api_limits reads the document itself (test_client_api)


@pytest.mark.parametrize("name", sorted(READS))
def test_what_the_client_reads_is_what_the_service_sends(document, name):
    read = READS[name]()
    s = Schemas(document)
    schema = success_content(operation(document, read.call))["application/json"]["schema"]
    if read.envelope is not None:
        schema = s.resolve(schema)["properties"][read.envelope]["items"]
    root = read.model.__name__
    check_record_read(s, read.model, s.resolve(schema), root)
    assert not s.problems, "\n".join(s.problems)


def test_the_columnar_batch_the_client_reads_is_what_the_service_sends(document):
    op = operation(document, READS["api_batch"]().call)
    schema = success_content(op)[BATCH_COLUMNS]["schema"]
    s = Schemas(document, root=schema)
    check_record_read(s, _ColumnBody, s.resolve(schema), "batch columns")
    assert not s.problems, "\n".join(s.problems)


@pytest.mark.parametrize("name", sorted(READS))
def test_what_the_client_sends_is_what_the_service_takes(document, name):
    call = READS[name]().call
    op = operation(document, call)
    s = Schemas(document)
    if call.json is not None:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        check_sent(s, call.json, schema, f"{name} body")
    query = {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}
    for key, value in (call.params or {}).items():
        if key not in query:
            s.problems.append(f"{name}: query {key!r} is not a parameter of the operation")
        else:  # query values travel as text; compare what they stand for
            typed = {"true": True, "false": False}.get(value, value)
            check_sent(s, typed, query[key], f"{name} query {key}")
    assert not s.problems, "\n".join(s.problems)


@pytest.mark.parametrize("schema_name", sorted(SENT_MODELS))
def test_request_models_have_the_service_fields_and_enums(document, schema_name):
    s = Schemas(document)
    schema = document["components"]["schemas"][schema_name]
    check_sent_model(s, SENT_MODELS[schema_name], schema, schema_name)
    assert not s.problems, "\n".join(s.problems)


def test_the_batch_modes_and_fills_the_client_accepts_are_the_services(document):
    request = document["components"]["schemas"]["BatchRequest"]["properties"]
    s = Schemas(document)
    assert set(api.FILL_POLICIES) == s.enum(request["fill"])
    for mode in s.enum(request["mode"]):
        assert api.api_batch("r", 1, None, mode).json["mode"] == mode
    with pytest.raises(ValueError):
        api.api_batch("r", 1, None, "greedy")


def test_names_the_client_knows_are_the_services_keys(document):
    schemas = document["components"]["schemas"]
    assert tuple(schemas["Zones"]["properties"]) == models.ZONES
    assert tuple(schemas["BatchSources"]["properties"]) == models.BATCH_SOURCES
