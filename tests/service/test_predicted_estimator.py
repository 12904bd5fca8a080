"""The "predicted" estimator through the API (SQLite and PostgreSQL): problems read once, at
an older step, get the pass rate the drift model predicts for the current student; the same
predictions after a restart (a rebuild from the outcome log) and on a replica that followed
the outcomes by syncs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.service.helpers import make_dataset, make_run, post_outcomes

N = 60
PREDICTED = {"kind": "predicted", "window": "latest"}


def rounds(step: int) -> list[dict]:
    """Step 0: p0..p29 read 0 of 8 (hard), p30..p59 4 of 8. Step 50: the student has learnt:
    p0..p19 read 4 of 8, p30..p49 6 of 8; p20..p29 and p50..p59 are not read again."""
    if step == 0:
        return [
            {"problem_id": f"p{i}", "attempts": 8, "successes": 0 if i < 30 else 4, "step": 0}
            for i in range(N)
        ]
    learnt = [{"problem_id": f"p{i}", "attempts": 8, "successes": 4} for i in range(20)]
    better = [{"problem_id": f"p{i}", "attempts": 8, "successes": 6} for i in range(30, 50)]
    # the first with a step, the rest without: the run's current step (50) is theirs
    return [{**learnt[0], "step": 50}, *learnt[1:], *better]


def all_weights(client, run: str) -> dict[str, tuple[float | None, float]]:
    items = client.post(f"/v1/runs/{run}/weights", json={}).json()["items"]
    return {item["problem_id"]: (item["pass_rate"], item["weight"]) for item in items}


def service(database_url: str, **settings) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url, **settings)))


def test_problems_read_once_get_the_predicted_pass_rate(database_url):
    with (
        service(database_url, sync_interval_s=0.0) as first,
        service(database_url, sync_interval_s=0.0) as replica,
    ):
        make_dataset(first, n=N)
        make_run(first, "pred", estimator=PREDICTED)
        make_run(first, "latest", estimator={"window": "latest"})
        for run in ("pred", "latest"):
            assert post_outcomes(first, run, rounds(0)).status_code == 200
        # the replica builds its index now, then follows the step-50 outcomes by syncs
        assert replica.get("/v1/runs/pred/difficulty").status_code == 200
        for run in ("pred", "latest"):
            assert post_outcomes(first, run, rounds(50)).status_code == 200
        predicted, latest = all_weights(first, "pred"), all_weights(first, "latest")
        # hard problems not read since step 0: 'latest' keeps 0 of 8 (weight 0); predicted
        # moves them with the problems of their zone that were read again (0 -> 4 of 8)
        assert latest["p25"] == (0.0, 0.0)
        rate, weight = predicted["p25"]
        assert 0.2 < rate < 0.6 and weight == pytest.approx(rate * (1 - rate))
        # frontier problems read once move up with theirs (4 -> 6 of 8)
        assert predicted["p55"][0] > 0.6 and latest["p55"][0] == 0.5
        # a problem read at the current step is its round's k / n
        assert predicted["p3"][0] == 0.5 and predicted["p40"][0] == 0.75
        stats = first.get("/v1/runs/pred/problems/p25").json()
        assert (stats["pass_rate"], stats["weight"]) == predicted["p25"]
        assert (stats["attempts"], stats["successes"]) == (8, 0)  # the counts stay the counts
        # batches draw them: every problem has a weight > 0 under predicted, 50 under latest
        body = first.post("/v1/runs/pred/batches", json={"size": N, "seed": 1}).json()
        assert body["available"] == N and {"p20", "p29"} <= {i["problem_id"] for i in body["items"]}
        assert first.post("/v1/runs/latest/batches", json={"size": N}).json()["available"] == 50
        # the difficulty view's histogram is of the predicted pass rates: nothing left at 0
        histogram = first.get("/v1/runs/pred/difficulty?bins=10").json()["histogram"]
        assert histogram["counts"][0] == 0 and sum(histogram["counts"]) == N
        followed = all_weights(replica, "pred")
    with service(database_url) as restarted:
        rebuilt = all_weights(restarted, "pred")
    for pid, (rate, weight) in predicted.items():
        assert rebuilt[pid][0] == pytest.approx(rate, abs=1e-9), pid
        assert rebuilt[pid][1] == pytest.approx(weight, abs=1e-9), pid
        assert followed[pid][1] == pytest.approx(weight, abs=1e-9), pid


def test_without_drift_predicted_is_latest(client):
    make_dataset(client, n=6)
    make_run(client, "pred", estimator=PREDICTED)
    make_run(client, "latest", estimator={"window": "latest"})
    outcomes = [{"problem_id": f"p{i}", "attempts": 8, "successes": i, "step": 3} for i in range(6)]
    for run in ("pred", "latest"):
        post_outcomes(client, run, outcomes)
    assert all_weights(client, "pred") == all_weights(client, "latest")
    assert client.get("/v1/runs/pred").json()["estimator"]["kind"] == "predicted"
