"""Window "latest": the service's pass rate follows the newest estimation round (issue 11),
through the SQL upsert on both databases, the in-memory index and the outcome log."""

from __future__ import annotations

import pytest

from service.curriculum.estimators import merge_outcome
from tests.service.helpers import make_dataset, make_run, post_outcomes, stats


def _post(client, run, problem_id, n, k, step):
    body = [{"problem_id": problem_id, "attempts": n, "successes": k, "step": step}]
    assert post_outcomes(client, run, body).status_code == 200


def test_fresh_estimate_replaces_the_old_rounds(client):
    make_dataset(client, n=3)
    run = make_run(client, name="track", estimator={"window": "latest"})
    assert run["estimator"]["window"] == "latest"
    _post(client, "track", "p0", 8, 8, 0)
    _post(client, "track", "p0", 8, 8, 10)
    _post(client, "track", "p0", 8, 3, 40)  # the student changed: a fresh K=8 round
    got = stats(client, "track", "p0")
    assert got["pass_rate"] == pytest.approx(3 / 8)
    assert got["zone"] == "frontier"
    assert (got["attempts"], got["successes"]) == (24, 19)  # raw totals stay exact


def test_same_round_adds_and_an_older_round_is_ignored(client):
    make_dataset(client, n=3)
    make_run(client, name="track", estimator={"window": "latest"})
    _post(client, "track", "p1", 4, 1, 7)
    _post(client, "track", "p1", 4, 3, 7)  # the same round in two posts: 4 of 8
    _post(client, "track", "p1", 8, 0, 2)  # a late post of an older round
    assert stats(client, "track", "p1")["pass_rate"] == pytest.approx(4 / 8)


def test_one_request_spanning_rounds_keeps_its_newest(client):
    make_dataset(client, n=3)
    make_run(client, name="track", estimator={"window": "latest"})
    body = [
        {"problem_id": "p2", "attempts": 8, "successes": 8, "step": 1},
        {"problem_id": "p2", "attempts": 8, "successes": 1, "step": 9},
        {"problem_id": "p2", "attempts": 8, "successes": 8, "step": 3},
    ]
    assert post_outcomes(client, "track", body).status_code == 200
    expect = (0.0, 0.0, -1)
    for o in body:
        expect = merge_outcome(*expect, o["attempts"], o["successes"], o["step"], None, "latest")
    assert stats(client, "track", "p2")["pass_rate"] == pytest.approx(expect[1] / expect[0])
    assert expect[1] / expect[0] == pytest.approx(1 / 8)


def test_batches_and_difficulty_see_the_fresh_round(client):
    make_dataset(client, n=2)
    make_run(client, name="track", estimator={"window": "latest"})
    _post(client, "track", "p0", 8, 8, 0)
    _post(client, "track", "p1", 8, 0, 0)
    assert client.post("/v1/runs/track/batches", json={"size": 2, "seed": 0}).status_code == 409
    _post(client, "track", "p0", 8, 4, 5)
    batch = client.post("/v1/runs/track/batches", json={"size": 2, "seed": 0}).json()
    assert [(i["problem_id"], i["pass_rate"]) for i in batch["items"]] == [("p0", 0.5)]
    zones = client.get("/v1/runs/track/difficulty").json()["zones"]
    assert zones["frontier"] == 1 and zones["intractable"] == 1


def test_default_window_is_latest_all_with_a_half_life_and_latest_with_one_is_refused(client):
    make_dataset(client, n=1)
    assert make_run(client, name="plain")["estimator"]["window"] == "latest"
    decayed = make_run(client, name="decayed", estimator={"half_life_steps": 5})
    assert decayed["estimator"]["window"] == "all"
    explicit = make_run(client, name="every", estimator={"window": "all"})
    assert explicit["estimator"]["window"] == "all"
    response = client.post(
        "/v1/runs",
        json={
            "name": "bad",
            "dataset": "math",
            "estimator": {"window": "latest", "half_life_steps": 5},
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "estimator", "window"]
    response = client.post(
        "/v1/runs", json={"name": "bad", "dataset": "math", "estimator": {"window": "recent"}}
    )
    assert response.status_code == 422


def test_a_run_created_with_no_estimator_follows_a_student_whose_pass_rate_moves(client):
    """The default (no estimator given) is the view of the current student: after the
    student improves, a fresh round is what the service reports, not the average of all."""
    make_dataset(client, n=2)
    run = make_run(client, name="defaults")
    assert run["estimator"]["window"] == "latest"
    for step, successes in [(0, 0), (25, 2), (50, 5), (75, 8)]:  # the student improves
        _post(client, "defaults", "p0", 8, successes, step)
        got = stats(client, "defaults", "p0")
        assert got["pass_rate"] == pytest.approx(successes / 8), step
    assert got["zone"] == "mastered"  # 'all' would say 15/32: frontier
    difficulty = client.get("/v1/runs/defaults/difficulty").json()
    assert difficulty["zones"]["mastered"] == 1
