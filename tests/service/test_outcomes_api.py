import math

import pytest

from service.curriculum.estimators import merge_outcome
from tests.service.helpers import make_dataset, make_run, post_outcomes, stats


@pytest.fixture
def ids(client):
    problem_ids = make_dataset(client, n=5)
    make_run(client, estimator={"window": "all"})  # counts add up across steps
    return problem_ids


def test_outcomes_accumulate_per_problem(client, ids):
    response = post_outcomes(
        client,
        "run1",
        [
            {"problem_id": ids[0], "attempts": 8, "successes": 3, "step": 0},
            {"problem_id": ids[0], "attempts": 4, "successes": 4, "step": 1},
            {"problem_id": ids[1], "attempts": 8, "successes": 0},
        ],
    )
    assert response.status_code == 200 and response.json() == {"accepted": 3}
    first = stats(client, "run1", ids[0])
    assert (first["attempts"], first["successes"], first["last_step"]) == (12, 7, 1)
    assert first["pass_rate"] == pytest.approx(7 / 12)
    assert first["weight"] == pytest.approx((7 / 12) * (5 / 12))
    assert first["zone"] == "frontier"
    assert stats(client, "run1", ids[1])["zone"] == "intractable"
    assert stats(client, "run1", ids[2]) == {
        "problem_id": ids[2],
        "attempts": 0,
        "successes": 0,
        "pass_rate": None,
        "weight": 0.0,
        "zone": "unseen",
        "last_step": None,
        "errored": 0,
        "prior_attempts": 0.0,
        "prior_successes": 0.0,
    }
    post_outcomes(client, "run1", [{"problem_id": ids[3], "attempts": 2, "successes": 2}])
    assert stats(client, "run1", ids[3])["zone"] == "mastered"


def test_unknown_problem_ids_are_422_listing_them_and_nothing_applies(client, ids):
    response = post_outcomes(
        client,
        "run1",
        [
            {"problem_id": ids[0], "attempts": 8, "successes": 3},
            {"problem_id": "ghost-1", "attempts": 1, "successes": 0},
            {"problem_id": "ghost-2", "attempts": 1, "successes": 0},
        ],
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "outcomes"] and detail["items"] == ["ghost-1", "ghost-2"]
    assert stats(client, "run1", ids[0])["attempts"] == 0
    assert client.get("/v1/runs/run1").json()["step"] is None


@pytest.mark.parametrize(
    ("item", "loc_tail"),
    [
        ({"attempts": 3, "successes": 5}, None),
        ({"attempts": -1, "successes": 0}, "attempts"),
        ({"attempts": 0, "successes": 0}, None),  # nothing attempted (nor errored)
        ({"attempts": 2, "successes": -1}, "successes"),
        ({"attempts": "8", "successes": 1}, "attempts"),
        ({"attempts": 2.5, "successes": 1}, "attempts"),
        ({"attempts": 2, "successes": 1, "step": -3}, "step"),
        ({"attempts": 2, "successes": 1, "extra": 1}, "extra"),
    ],
)
def test_bad_outcomes_are_422_naming_the_field(client, ids, item, loc_tail):
    response = post_outcomes(client, "run1", [{"problem_id": ids[0], **item}])
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][:3] == ["body", "outcomes", 0]
    if loc_tail is None:  # a rule over the item's fields: located at the item
        assert "successes" in detail["msg"] or "errored" in detail["msg"]
        assert "attempts" in detail["msg"]
    else:
        assert detail["loc"][3] == loc_tail
    assert stats(client, "run1", ids[0])["attempts"] == 0


def test_bad_item_anywhere_rejects_the_whole_request(client, ids):
    good = [{"problem_id": p, "attempts": 4, "successes": 2} for p in ids]
    bad = good + [{"problem_id": ids[0], "attempts": 1, "successes": 2}]
    assert post_outcomes(client, "run1", bad).status_code == 422
    assert all(stats(client, "run1", p)["attempts"] == 0 for p in ids)


def test_empty_and_oversized_requests_are_422(client, ids):
    assert post_outcomes(client, "run1", []).status_code == 422
    many = [{"problem_id": ids[0], "attempts": 1, "successes": 0}] * 10_001
    response = post_outcomes(client, "run1", many)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][:2] == ["body", "outcomes"]


def test_up_to_ten_thousand_items_with_repeats_are_accepted(client, ids):
    items = [{"problem_id": ids[i % 5], "attempts": 2, "successes": i % 3} for i in range(10_000)]
    assert post_outcomes(client, "run1", items).json() == {"accepted": 10_000}
    expected = sum(i % 3 for i in range(10_000) if i % 5 == 0)
    assert stats(client, "run1", ids[0])["successes"] == expected
    assert stats(client, "run1", ids[0])["attempts"] == 4000


def test_idempotent_replay_returns_first_response_and_changes_nothing(client, ids):
    body = [{"problem_id": ids[0], "attempts": 8, "successes": 3, "step": 2}]
    first = post_outcomes(client, "run1", body, key="abc")
    assert first.status_code == 200
    for _ in range(3):
        replay = post_outcomes(client, "run1", body, key="abc")
        assert replay.status_code == 200 and replay.json() == first.json()
    assert stats(client, "run1", ids[0])["attempts"] == 8


def test_same_key_with_different_body_is_409_and_changes_nothing(client, ids):
    post_outcomes(client, "run1", [{"problem_id": ids[0], "attempts": 8, "successes": 3}], key="k")
    response = post_outcomes(
        client, "run1", [{"problem_id": ids[0], "attempts": 8, "successes": 4}], key="k"
    )
    assert response.status_code == 409
    assert "Idempotency-Key" in response.json()["detail"]
    assert stats(client, "run1", ids[0])["successes"] == 3


def test_keys_are_scoped_per_run(client, ids):
    make_run(client, name="run2")
    body = [{"problem_id": ids[0], "attempts": 8, "successes": 3}]
    post_outcomes(client, "run1", body, key="shared")
    post_outcomes(client, "run2", body, key="shared")
    assert stats(client, "run2", ids[0])["attempts"] == 8


def test_half_life_discounts_older_counts(client):
    make_dataset(client, n=2)
    make_run(client, name="decay", estimator={"half_life_steps": 10})
    sequence = [(8, 8, 0), (8, 0, 10), (4, 2, 5)]  # out of order on purpose
    for n, k, step in sequence:
        post_outcomes(
            client, "decay", [{"problem_id": "p0", "attempts": n, "successes": k, "step": step}]
        )
    a, s, last = 0.0, 0.0, -1
    for n, k, step in sequence:
        a, s, last = merge_outcome(a, s, last, n, k, step, 10.0)
    got = stats(client, "decay", "p0")
    assert got["attempts"] == 20 and got["successes"] == 10  # raw totals stay exact
    assert got["pass_rate"] == pytest.approx(s / a, rel=1e-12)
    # closed form: effective counts at step 10
    eff_a = 8 * 0.5 + 8 + 4 * math.pow(2, -0.5)
    eff_s = 8 * 0.5 + 0 + 2 * math.pow(2, -0.5)
    assert got["pass_rate"] == pytest.approx(eff_s / eff_a, rel=1e-12)


def test_outcome_without_step_counts_at_the_runs_current_step(client):
    make_dataset(client, n=2)
    make_run(client, name="decay", estimator={"half_life_steps": 1})
    post_outcomes(client, "decay", [{"problem_id": "p1", "attempts": 1, "successes": 1, "step": 6}])
    post_outcomes(client, "decay", [{"problem_id": "p0", "attempts": 4, "successes": 4, "step": 4}])
    post_outcomes(client, "decay", [{"problem_id": "p0", "attempts": 4, "successes": 0}])
    got = stats(client, "decay", "p0")
    assert got["last_step"] == 6
    assert got["pass_rate"] == pytest.approx(1.0 / 5.0)  # 4*2^-2 = 1 success of 5


def test_outcome_log_keeps_every_accepted_outcome_once_in_order(client, ids):
    from service.store import outcome_log
    from service.store import runs as run_store

    first = [
        {"problem_id": ids[1], "attempts": 8, "successes": 3, "step": 4},
        {"problem_id": ids[0], "attempts": 2, "successes": 0},
    ]
    second = [{"problem_id": ids[1], "attempts": 1, "successes": 1, "step": 5}]
    assert post_outcomes(client, "run1", first, key="a").status_code == 200
    assert post_outcomes(client, "run1", first, key="a").status_code == 200  # replay
    assert post_outcomes(client, "run1", second).status_code == 200
    bad = [{"problem_id": ids[2], "attempts": 1, "successes": 0}, {"problem_id": "nope"}]
    assert post_outcomes(client, "run1", bad).status_code == 422  # rejected: not logged

    ctx = client.app.state.ctx
    with ctx.session_factory() as session:
        log = outcome_log.read(session, run_store.get_by_name(session, "run1").id)
        ids_by_pk = {v: k for k, v in _ids_for(session, ids).items()}
    assert [ids_by_pk[p] for p in log["problem_ids"].tolist()] == [ids[1], ids[0], ids[1]]
    assert log["attempts"].tolist() == [8, 2, 1]
    assert log["successes"].tolist() == [3, 0, 1]
    assert log["steps"].tolist() == [4, outcome_log.NO_STEP, 5]
    assert log["version"].tolist()[0] < log["version"].tolist()[2]


def _ids_for(session, external_ids):
    from service.store import datasets as dataset_store

    dataset = dataset_store.get_by_name(session, "math")
    return dataset_store.ids_for_external(session, dataset.id, external_ids)
