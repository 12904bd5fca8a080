"""The OpenAPI document tells the truth: the errors each operation can answer are documented
with one error model, operation ids are readable, and the behaviour the fuzzer exercises
(tests/reliability/test_fuzz.py) agrees with it in the cases written out here."""

from __future__ import annotations

import pytest

from tests.service.helpers import make_dataset, make_run, post_outcomes

METHODS = {"get", "post", "put", "patch", "delete"}


def operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


@pytest.fixture
def document(app) -> dict:
    return app.openapi()


def test_operation_ids_are_the_route_function_names(document):
    ids = {(method, path): op["operationId"] for path, method, op in operations(document)}
    assert len(set(ids.values())) == len(ids)
    assert ids[("post", "/v1/runs/{run}/batches")] == "draw_batch"
    assert ids[("post", "/v1/runs")] == "create_run"
    assert all("_v1_" not in op_id for op_id in ids.values())


def test_every_operation_documents_the_errors_it_can_answer(document):
    error_schema = {"$ref": "#/components/schemas/ErrorMessage"}
    for path, method, op in operations(document):
        codes = set(op["responses"])
        where = f"{method.upper()} {path}"
        if path != "/healthz":
            assert {"401", "403"} <= codes, where  # every /v1 route and /metrics takes a token
        if path.startswith("/v1/"):
            assert "503" in codes, where  # the database may be away
        if "{" in path:
            assert "404" in codes, where  # a named resource may not exist
        if "requestBody" in op:
            assert {"400", "413"} <= codes, where  # unreadable or too large
        if op.get("parameters") or "requestBody" in op:
            assert "422" in codes, where
        for code in codes - {"200", "201", "422", "413"}:
            schema = op["responses"][code]["content"]["application/json"]["schema"]
            assert schema == error_schema, (where, code)


@pytest.mark.parametrize("path", ["/v1/runs", "/v1/datasets"])
def test_an_unsupported_method_names_every_allowed_one(client, path):
    for method in ("OPTIONS", "DELETE", "PATCH"):
        response = client.request(method, path)
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
    response = client.request("DELETE", "/v1/runs/r1/batches")
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


def test_integer_fields_take_integral_numbers_and_nothing_else(client):
    make_dataset(client, n=3)
    make_run(client)
    ok = post_outcomes(client, "run1", [{"problem_id": "p0", "attempts": 4.0, "successes": 1.0}])
    assert ok.status_code == 200, ok.text
    assert client.post("/v1/runs/run1/batches", json={"size": 2.0}).status_code == 200
    assert client.post("/v1/runs/run1/weights", json={"limit": 1.0}).status_code == 200
    for size in ("2", 2.5, True):
        response = client.post("/v1/runs/run1/batches", json={"size": size})
        assert response.status_code == 422, size
        assert response.json()["detail"][0]["loc"] == ["body", "size"]


def test_nul_in_a_name_is_never_a_retryable_503(client, database_url):
    response = client.get("/v1/runs/a%00b")
    # PostgreSQL text cannot hold NUL (422, the request's fault); SQLite looks the name up.
    expected = 422 if database_url.startswith("postgresql") else 404
    assert response.status_code == expected, response.text
