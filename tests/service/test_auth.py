"""Auth matrix: every endpoint x {no token, wrong token, other run's token, run token, admin}."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

ADMIN = "admin-secret-token"

# (method, path, json body, admin-only?)
ENDPOINTS = [
    ("GET", "/v1/datasets", None, True),
    ("POST", "/v1/datasets", {"name": "other"}, True),
    ("GET", "/v1/datasets/math", None, True),
    ("POST", "/v1/datasets/math/problems", {"problems": [{"id": "z", "prompt": "z"}]}, True),
    ("GET", "/v1/datasets/math/problems/p0", None, True),
    ("GET", "/v1/runs", None, True),
    ("POST", "/v1/runs", {"name": "newrun", "dataset": "math"}, True),
    ("GET", "/metrics", None, True),
    ("GET", "/v1/runs/mine", None, False),
    (
        "POST",
        "/v1/runs/mine/outcomes",
        {"outcomes": [{"problem_id": "p0", "attempts": 2, "successes": 1}]},
        False,
    ),
    ("GET", "/v1/runs/mine/problems/p0", None, False),
    ("POST", "/v1/runs/mine/weights", {}, False),
    ("POST", "/v1/runs/mine/batches", {"size": 1, "seed": 0}, False),
    ("GET", "/v1/runs/mine/rollout-queue", None, False),
    ("GET", "/v1/runs/mine/difficulty", None, False),
    ("GET", "/v1/runs-summary", None, True),
    ("GET", "/v1/compare?runs=mine,theirs", None, True),
    ("GET", "/v1/runs/mine/problem-history/p0", None, False),
]
SUCCESS = {200, 201}


@pytest.fixture
def secured(database_url):
    app = create_app(Settings(database_url=database_url, admin_token=ADMIN, sync_interval_s=0))
    with TestClient(app) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        assert client.post("/v1/datasets", json={"name": "math"}, headers=admin).status_code == 201
        problems = [{"id": f"p{i}", "prompt": "x"} for i in range(3)]
        client.post("/v1/datasets/math/problems", json={"problems": problems}, headers=admin)
        tokens = {}
        for run in ("mine", "theirs"):
            body = client.post(
                "/v1/runs", json={"name": run, "dataset": "math"}, headers=admin
            ).json()
            assert body["token"].startswith("paced_run_")
            tokens[run] = body["token"]
        client.post(
            "/v1/runs/mine/outcomes",
            json={"outcomes": [{"problem_id": "p1", "attempts": 4, "successes": 2}]},
            headers=admin,
        )
        yield client, tokens
    app.state.ctx.engine.dispose()


def call(client, method, path, body, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body", "admin_only"), ENDPOINTS)
def test_auth_matrix(secured, method, path, body, admin_only):
    client, tokens = secured
    assert call(client, method, path, body, None).status_code == 401
    assert call(client, method, path, body, "not-a-token").status_code == 401
    assert call(client, method, path, body, tokens["theirs"]).status_code == 403
    own = call(client, method, path, body, tokens["mine"]).status_code
    assert own == 403 if admin_only else own in SUCCESS, (path, own)
    assert call(client, method, path, body, ADMIN).status_code in SUCCESS


def test_run_token_is_shown_once_and_stored_hashed(secured):
    client, tokens = secured
    fetched = call(client, "GET", "/v1/runs/mine", None, ADMIN).json()
    assert fetched["token"] is None
    again = call(client, "POST", "/v1/runs", {"name": "mine", "dataset": fetched["dataset"]}, ADMIN)
    assert again.status_code == 200 and again.json()["token"] is None  # get-or-create: no leak
    listing = call(client, "GET", "/v1/runs", None, ADMIN).json()["items"]
    assert all(r["token"] is None for r in listing)
    from sqlalchemy import create_engine, text

    from service.db import normalise_url

    engine = create_engine(normalise_url(client.app.state.ctx.settings.database_url))
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM runs WHERE name='mine'")).scalar_one()
    engine.dispose()
    assert tokens["mine"] not in stored and len(stored) == 64


def test_health_stays_open_for_load_balancers(secured):
    client, _ = secured
    assert client.get("/healthz").status_code == 200


def test_malformed_authorization_headers_are_401(secured):
    client, _ = secured
    for header in ["Basic abc", "Bearer", "Bearer    ", ADMIN]:
        response = client.get("/v1/runs", headers={"Authorization": header})
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_open_mode_needs_no_token_and_returns_no_run_token(client):
    client.post("/v1/datasets", json={"name": "math"})
    body = client.post("/v1/runs", json={"name": "r", "dataset": "math"}).json()
    assert body["token"] is None
