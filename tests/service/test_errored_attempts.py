"""Attempts that errored or timed out: stored and shown, never counted in the pass rate."""

from __future__ import annotations

import pytest

from tests.service.helpers import make_dataset, make_run, post_outcomes
from tests.service.helpers import stats as run_stats


def stats(client, pid: str) -> dict:
    return run_stats(client, "run1", pid)


def test_errored_attempts_are_shown_and_leave_the_pass_rate_alone(client):
    ids = make_dataset(client, n=3)
    make_run(client)
    body = [
        {"problem_id": ids[0], "attempts": 6, "successes": 3, "errored": 2, "step": 1},
        {"problem_id": ids[1], "attempts": 4, "successes": 1, "step": 1},
    ]
    assert post_outcomes(client, "run1", body).json() == {"accepted": 2}
    first = stats(client, ids[0])
    assert (first["attempts"], first["successes"], first["errored"]) == (6, 3, 2)
    assert first["pass_rate"] == pytest.approx(0.5)  # 3 of 6 graded, not 3 of 8
    assert stats(client, ids[1])["errored"] == 0
    assert client.get("/v1/runs/run1/difficulty").json()["errored_attempts"] == 2


def test_a_group_whose_every_attempt_errored_moves_neither_counts_nor_the_round(client):
    ids = make_dataset(client, n=2)
    make_run(client)  # window 'latest': a newer round would replace the counts
    post_outcomes(
        client, "run1", [{"problem_id": ids[0], "attempts": 8, "successes": 2, "step": 3}]
    )
    errored_only = [{"problem_id": ids[0], "attempts": 0, "successes": 0, "errored": 8, "step": 9}]
    assert post_outcomes(client, "run1", errored_only).status_code == 200
    after = stats(client, ids[0])
    assert (after["attempts"], after["successes"], after["last_step"]) == (8, 2, 3)
    assert after["errored"] == 8 and after["pass_rate"] == pytest.approx(0.25)


def test_nothing_attempted_is_422_and_nothing_is_applied(client):
    ids = make_dataset(client, n=2)
    make_run(client)
    body = [
        {"problem_id": ids[0], "attempts": 2, "successes": 1, "errored": 1},
        {"problem_id": ids[1], "attempts": 0, "successes": 0},
    ]
    response = post_outcomes(client, "run1", body)
    assert response.status_code == 422
    error = response.json()["detail"][0]
    assert error["loc"] == ["body", "outcomes", 1] and "errored >= 1" in error["msg"]
    assert stats(client, ids[0])["errored"] == 0
    bad = [{"problem_id": ids[0], "attempts": 2, "successes": 1, "errored": -1}]
    assert post_outcomes(client, "run1", bad).json()["detail"][0]["loc"][-1] == "errored"


def test_a_keyed_retry_counts_errored_attempts_once(client):
    ids = make_dataset(client, n=1)
    make_run(client)
    body = [{"problem_id": ids[0], "attempts": 3, "successes": 1, "errored": 5, "step": 0}]
    for _ in range(3):
        assert post_outcomes(client, "run1", body, key="k-1").status_code == 200
    assert stats(client, ids[0])["errored"] == 5
    other = [{"problem_id": ids[0], "attempts": 3, "successes": 1, "errored": 4, "step": 0}]
    assert post_outcomes(client, "run1", other, key="k-1").status_code == 409


def test_errored_zero_is_the_same_body_as_no_errored(client):
    ids = make_dataset(client, n=1)
    make_run(client)
    plain = [{"problem_id": ids[0], "attempts": 3, "successes": 1, "step": 0}]
    assert post_outcomes(client, "run1", plain, key="k-2").status_code == 200
    zero = [{**plain[0], "errored": 0}]
    assert post_outcomes(client, "run1", zero, key="k-2").status_code == 200  # a replay
    assert stats(client, ids[0])["attempts"] == 3


def test_runs_summary_counts_graded_and_errored_rollouts_when_asked(client):
    ids = make_dataset(client, n=2)
    make_run(client)
    body = [
        {"problem_id": ids[0], "attempts": 6, "successes": 3, "errored": 2},
        {"problem_id": ids[1], "attempts": 0, "successes": 0, "errored": 8},
    ]
    post_outcomes(client, "run1", body)
    (asked,) = client.get("/v1/runs-summary?rollouts=true").json()["items"]
    assert (asked["rollouts"], asked["errored_rollouts"]) == (6, 10)
    (plain,) = client.get("/v1/runs-summary").json()["items"]
    assert plain["rollouts"] is None  # not counted unless asked
