"""Per-problem priors through the API, on SQLite and PostgreSQL: an uploaded profile and
another run's estimates become Beta pseudo-counts of every estimate, the views say what part
of a count is prior, and the priors survive a restart and reach another replica."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.helpers import make_dataset, make_run, post_outcomes, stats

PROFILE = [
    {"problem_id": "p0", "pass_rate": 0.25, "pseudo_attempts": 4},
    {"problem_id": "p1", "pass_rate": 0.0, "pseudo_attempts": 16},  # capped at 8 below
]


def weights(client, run: str, ids: list[str]) -> dict[str, dict]:
    response = client.post(f"/v1/runs/{run}/weights", json={"problem_ids": ids})
    assert response.status_code == 200, response.text
    return {item["problem_id"]: item for item in response.json()["items"]}


def upload(client, run: str, items: list[dict], **options):
    return client.post(f"/v1/runs/{run}/priors", json={"items": items, **options})


@pytest.fixture
def two_runs(client):
    make_dataset(client, n=6)
    make_run(client, "base")
    make_run(client, "student", estimator={"kind": "posterior"})
    return client


def test_a_profile_is_pseudo_counts_of_every_estimate(two_runs):
    client = two_runs
    response = upload(client, "base", PROFILE, max_pseudo_attempts=8)
    assert response.status_code == 200, response.text
    assert response.json() == {"updated": 2, "problems_with_prior": 2}
    got = weights(client, "base", ["p0", "p1", "p2"])
    assert (got["p0"]["prior_attempts"], got["p0"]["prior_successes"]) == (4.0, 1.0)
    assert got["p1"]["prior_attempts"] == 8.0  # capped
    assert got["p0"]["attempts"] == 0 and got["p0"]["pass_rate"] == 0.25
    assert got["p0"]["weight"] == pytest.approx(0.25 * 0.75)  # empirical: w(k / n)
    assert got["p2"]["prior_attempts"] == 0.0 and got["p2"]["pass_rate"] is None
    # the zones and the batch read the prior: p0 frontier, p1 intractable, the rest unseen
    zones = client.get("/v1/runs/base/difficulty").json()["zones"]
    assert zones == {"unseen": 4, "intractable": 1, "frontier": 1, "mastered": 0}
    batch = client.post("/v1/runs/base/batches", json={"size": 3, "seed": 1}).json()
    assert [i["problem_id"] for i in batch["items"]] == ["p0"] and batch["available"] == 1
    # an outcome adds to the prior: (1 + 3) / (4 + 4); the view keeps the parts apart
    post_outcomes(client, "base", [{"problem_id": "p0", "attempts": 4, "successes": 3}])
    one = stats(client, "base", "p0")
    assert (one["attempts"], one["successes"], one["prior_attempts"]) == (4, 3, 4.0)
    assert one["pass_rate"] == 0.5 and one["zone"] == "frontier"


def test_another_runs_estimates_down_weighted_to_n0(two_runs):
    client = two_runs
    post_outcomes(
        client,
        "base",
        [
            {"problem_id": "p0", "attempts": 32, "successes": 8, "step": 1},
            {"problem_id": "p1", "attempts": 4, "successes": 4, "step": 1},
        ],
    )
    response = client.post("/v1/runs/student/priors/copy", json={"from_run": "base"})
    assert response.status_code == 200, response.text
    assert response.json() == {"updated": 2, "problems_with_prior": 2}
    got = weights(client, "student", ["p0", "p1", "p2"])
    assert (got["p0"]["prior_attempts"], got["p0"]["prior_successes"]) == (8.0, 2.0)  # n0 = 8
    assert (got["p1"]["prior_attempts"], got["p1"]["prior_successes"]) == (4.0, 4.0)
    # the student's posterior: Beta(1 + 2, 1 + 6) for p0, mean weight of p(1-p)
    assert got["p0"]["weight"] == pytest.approx(3 * 7 / (10 * 11))
    response = client.post(
        "/v1/runs/student/priors/copy", json={"from_run": "base", "max_pseudo_attempts": 2}
    )
    assert weights(client, "student", ["p0"])["p0"]["prior_attempts"] == 2.0


def test_replace_clears_and_bad_uploads_apply_nothing(two_runs):
    client = two_runs
    assert upload(client, "base", PROFILE).status_code == 200
    twice = upload(client, "base", [PROFILE[0], PROFILE[0]])
    assert twice.status_code == 422 and twice.json()["detail"][0]["items"] == ["p0"]
    unknown = upload(
        client, "base", [{**PROFILE[0], "pseudo_attempts": 1}, {**PROFILE[1], "problem_id": "zz"}]
    )
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["items"] == ["zz"]
    assert weights(client, "base", ["p0"])["p0"]["prior_attempts"] == 4.0  # untouched
    for bad in ({"pass_rate": 1.5}, {"pseudo_attempts": 0}, {"pass_rate": "0.5"}, {"extra": 1}):
        assert upload(client, "base", [{**PROFILE[0], **bad}]).status_code == 422
    cleared = upload(client, "base", [], replace=True)
    assert cleared.json() == {"updated": 0, "problems_with_prior": 0}
    assert client.get("/v1/runs/base/difficulty").json()["zones"]["unseen"] == 6
    assert upload(client, "nope", PROFILE).status_code == 404


def test_copy_refuses_itself_another_dataset_and_unknown_runs(two_runs):
    client = two_runs
    make_dataset(client, "other", n=2)
    make_run(client, "elsewhere", dataset="other")
    copy = "/v1/runs/student/priors/copy"
    assert client.post(copy, json={"from_run": "student"}).status_code == 409
    assert client.post(copy, json={"from_run": "elsewhere"}).status_code == 409
    assert client.post(copy, json={"from_run": "nope"}).status_code == 404
    assert client.post(copy, json={"from_run": "base", "max_pseudo_attempts": 0}).status_code == 422


def test_priors_survive_a_restart_and_reach_another_replica(database_url):
    def service(**settings) -> TestClient:
        return TestClient(create_app(Settings(database_url=database_url, **settings)))

    with service(sync_interval_s=0.0) as first, service(sync_interval_s=0.0) as replica:
        make_dataset(first, n=6)
        make_run(first, "base")
        # the replica builds its index before the priors exist...
        assert replica.post("/v1/runs/base/batches", json={"size": 2}).status_code == 409
        assert upload(first, "base", PROFILE).status_code == 200
        # ...and learns them on its next sync (priors_version moved)
        batch = replica.post("/v1/runs/base/batches", json={"size": 2, "seed": 3}).json()
        assert [i["problem_id"] for i in batch["items"]] == ["p0"]
        assert upload(first, "base", [PROFILE[1] | {"pass_rate": 0.5}]).status_code == 200
        assert weights(replica, "base", ["p1"])["p1"]["prior_successes"] == 8.0
        batch = replica.post("/v1/runs/base/batches", json={"size": 2, "seed": 3}).json()
        assert {i["problem_id"] for i in batch["items"]} == {"p0", "p1"}
    with service() as restarted:  # a fresh process: the index is built from the database
        got = weights(restarted, "base", ["p0", "p1"])
        assert (got["p0"]["prior_attempts"], got["p1"]["prior_attempts"]) == (4.0, 16.0)
        zones = restarted.get("/v1/runs/base/difficulty").json()["zones"]
        assert zones["frontier"] == 2 and zones["unseen"] == 4
        exported = restarted.post("/v1/runs/base/weights", json={}).json()["items"]
        assert sum(item["prior_attempts"] for item in exported) == 20.0


def test_the_items_limit_is_the_settings_and_stated_in_the_document(database_url):
    settings = Settings(database_url=database_url, max_items_per_request=2)
    with TestClient(create_app(settings)) as small:
        document = small.get("/openapi.json").json()
        schema = document["components"]["schemas"]["PriorsUpload"]["properties"]["items"]
        assert schema["maxItems"] == 2
        make_dataset(small, n=2)
        make_run(small, "base")
        three = [{**PROFILE[0], "problem_id": f"p{i}"} for i in range(3)]
        response = upload(small, "base", three)
        assert response.status_code == 422 and "too many items" in response.text
