"""Items per request and batch sizes come from settings alone: raising them works, and the
OpenAPI document states whatever they are."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.helpers import make_dataset, make_run, post_outcomes


@pytest.fixture
def raised(database_url):
    settings = Settings(
        database_url=database_url,
        sync_interval_s=0.0,
        max_batch_size=5000,
        max_items_per_request=10_002,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client
    app.state.ctx.engine.dispose()


def limits_in_document(client) -> dict[str, int]:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    return {
        "size": schemas["BatchRequest"]["properties"]["size"]["maximum"],
        "outcomes": schemas["OutcomesPost"]["properties"]["outcomes"]["maxItems"],
        "problems": schemas["ProblemsUpsert"]["properties"]["problems"]["maxItems"],
    }


def test_raised_limits_are_accepted_and_documented(raised):
    assert limits_in_document(raised) == {"size": 5000, "outcomes": 10_002, "problems": 10_002}
    make_dataset(raised, n=10_002)
    make_run(raised)
    outcomes = [{"problem_id": f"p{i}", "attempts": 4, "successes": 2} for i in range(10_002)]
    assert post_outcomes(raised, "run1", outcomes).json() == {"accepted": 10_002}
    batch = raised.post("/v1/runs/run1/batches", json={"size": 5000, "seed": 1})
    assert batch.status_code == 200 and len(batch.json()["items"]) == 5000
    over = raised.post("/v1/runs/run1/batches", json={"size": 5001, "seed": 1})
    assert over.status_code == 422 and over.json()["detail"][0]["ctx"] == {"limit": 5000}


def test_default_limits_are_the_documented_4096_and_10000(client):
    assert limits_in_document(client) == {"size": 4096, "outcomes": 10_000, "problems": 10_000}
    make_dataset(client, n=2)
    make_run(client)
    over = client.post("/v1/runs/run1/batches", json={"size": 4097})
    assert over.status_code == 422
    assert over.json()["detail"][0]["loc"] == ["body", "size"]
    too_many = post_outcomes(
        client, "run1", [{"problem_id": "p0", "attempts": 1, "successes": 0}] * 10_001
    )
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["ctx"] == {"limit": 10_000, "count": 10_001}
