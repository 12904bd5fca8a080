import math

import pytest

from tests.service.helpers import make_dataset, make_run, post_outcomes


@pytest.fixture
def run_with_spread(client):
    make_dataset(client, n=10)
    make_run(client)
    post_outcomes(
        client,
        "run1",
        [
            {"problem_id": "p0", "attempts": 4, "successes": 0, "step": 1},
            {"problem_id": "p1", "attempts": 4, "successes": 4, "step": 1},
            {"problem_id": "p2", "attempts": 4, "successes": 2, "step": 9},
            {"problem_id": "p3", "attempts": 4, "successes": 1, "step": 9},
            {"problem_id": "p4", "attempts": 4, "successes": 3, "step": 2},
        ],
    )


def test_difficulty_zones_histogram_and_effective_problems(client, run_with_spread):
    body = client.get("/v1/runs/run1/difficulty?bins=4").json()
    assert body["problems"] == 10
    assert body["zones"] == {"unseen": 5, "intractable": 1, "frontier": 3, "mastered": 1}
    assert body["histogram"]["edges"] == pytest.approx([0, 0.25, 0.5, 0.75, 1])
    assert sum(body["histogram"]["counts"]) == 5
    weights = [0.25, 0.1875, 0.1875]
    assert body["mean_weight"] == pytest.approx(sum(weights) / 5)
    q = [w / sum(weights) for w in weights]
    assert body["effective_problems"] == pytest.approx(math.exp(-sum(x * math.log(x) for x in q)))


def test_difficulty_bins_validated(client, run_with_spread):
    assert client.get("/v1/runs/run1/difficulty?bins=0").status_code == 422
    assert client.get("/v1/runs/run1/difficulty?bins=abc").status_code == 422


def test_rollout_queue_orders_unseen_then_stale_then_uncertain(client, run_with_spread):
    body = client.get("/v1/runs/run1/rollout-queue?limit=10&stale_after=5").json()
    reasons = [(i["problem_id"], i["reason"]) for i in body["items"]]
    assert reasons[:5] == [(f"p{i}", "unseen") for i in range(5, 10)]
    stale = [pid for pid, reason in reasons if reason == "stale"]
    assert stale[0] in ("p0", "p1") and set(stale) == {"p0", "p1", "p4"}
    assert [r for _, r in reasons[8:]] == ["uncertain", "uncertain"]
    assert body["items"][0]["prompt"] == "prompt p5"
    assert len(client.get("/v1/runs/run1/rollout-queue?limit=3").json()["items"]) == 3
    assert client.get("/v1/runs/run1/rollout-queue?limit=0").status_code == 422


def test_weights_for_named_problems(client, run_with_spread):
    body = client.post("/v1/runs/run1/weights", json={"problem_ids": ["p2", "p9"]}).json()
    assert body["next_cursor"] is None
    no_prior = {"prior_attempts": 0.0, "prior_successes": 0.0}
    assert body["items"] == [
        {"problem_id": "p2", "attempts": 4, "successes": 2, "pass_rate": 0.5, "weight": 0.25}
        | no_prior,
        {"problem_id": "p9", "attempts": 0, "successes": 0, "pass_rate": None, "weight": 0.0}
        | no_prior,
    ]
    response = client.post("/v1/runs/run1/weights", json={"problem_ids": ["p2", "nope"]})
    assert response.status_code == 422 and response.json()["detail"][0]["items"] == ["nope"]


def test_weights_paginate_over_all_problems(client, run_with_spread):
    seen, cursor = [], None
    for _ in range(10):
        body = client.post("/v1/runs/run1/weights", json={"limit": 3, "cursor": cursor}).json()
        seen += [i["problem_id"] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"p{i}" for i in range(10)]
    everything = client.post("/v1/runs/run1/weights").json()
    assert [i["problem_id"] for i in everything["items"]] == seen
    assert client.post("/v1/runs/run1/weights", json={"cursor": "zzz"}).status_code == 422
    assert client.post("/v1/runs/run1/weights", json={"limit": 0}).status_code == 422


def test_metrics_count_requests_outcomes_and_batches(client, run_with_spread):
    client.post("/v1/runs/run1/batches", json={"size": 2, "seed": 1})
    text = client.get("/metrics").text
    assert "paced_outcomes_ingested_total 5.0" in text
    assert 'paced_batches_served_total{mode="proportional"} 1.0' in text
    assert 'route="/v1/runs/{run}/batches"' in text
    assert "paced_http_request_duration_seconds_bucket" in text


def test_healthz(client):
    assert client.get("/healthz").json() == {"status": "ok"}
