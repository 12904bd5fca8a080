"""The columnar batch format: sent only to a client whose Accept names it, and exactly the
row format's batch transposed (fills, pinned draws and leases included)."""

from __future__ import annotations

import pytest

from tests.service.helpers import make_dataset, make_run, post_outcomes

COLUMNS = "application/vnd.paced.batch-columns+json"


@pytest.fixture
def seeded(client):
    make_dataset(client, n=12)
    make_run(client)
    outcomes = [{"problem_id": f"p{i}", "attempts": 8, "successes": i} for i in range(8)]
    post_outcomes(client, "run1", outcomes)


def rows_and_columns(client, **body):
    rows = client.post("/v1/runs/run1/batches", json=body)
    columns = client.post("/v1/runs/run1/batches", json=body, headers={"Accept": COLUMNS})
    assert rows.status_code == columns.status_code == 200, (rows.text, columns.text)
    assert rows.headers["content-type"] == "application/json"
    assert columns.headers["content-type"] == COLUMNS
    return rows.json(), columns.json()


def transposed(body: dict) -> dict:
    items = body["items"]
    out = {"columns": {k: [item[k] for item in items] for k in items[0]}}
    return {**out, **{k: v for k, v in body.items() if k != "items"}}


@pytest.mark.parametrize(
    "request_body",
    [
        {"size": 5, "seed": 3},
        {"size": 6, "seed": 4, "mode": "uniform"},
        {"size": 10, "seed": 5, "fill": "unseen_then_uniform"},  # more than the 6 eligible
        {"size": 4, "seed": 6, "draw_key": "step-1"},
        {"size": 3, "seed": 7, "lease": {"claimer": "worker-a"}},
    ],
)
def test_columns_are_the_rows_transposed(client, seeded, request_body):
    if "lease" in request_body:  # a lease is a claim: compare with a second claim's items
        rows = client.post("/v1/runs/run1/batches", json=request_body).json()
        other = {**request_body, "lease": {"claimer": "worker-b"}, "skip_leased": True}
        columns = client.post(
            "/v1/runs/run1/batches", json=other, headers={"Accept": COLUMNS}
        ).json()
        assert set(columns["columns"]) == set(transposed(rows)["columns"])
        assert not set(columns["columns"]["problem_id"]) & {i["problem_id"] for i in rows["items"]}
        return
    rows, columns = rows_and_columns(client, **request_body)
    assert columns == transposed(rows)
    if "fill" in request_body:
        assert "source" in columns["columns"] and "sources" in columns


def test_other_accept_headers_get_the_row_format(client, seeded):
    for accept in ("application/json", "*/*", "text/html, application/json;q=0.9"):
        response = client.post(
            "/v1/runs/run1/batches", json={"size": 3, "seed": 1}, headers={"Accept": accept}
        )
        assert response.headers["content-type"] == "application/json"
        assert "items" in response.json()
