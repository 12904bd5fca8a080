import pytest

from tests.service.helpers import make_dataset, make_run, post_outcomes


@pytest.fixture
def seeded(client):
    """p0..p3 frontier with different pass rates, p4 mastered, p5 intractable, p6..p9 unseen."""
    ids = make_dataset(client, n=10)
    make_run(client)
    outcomes = [
        {"problem_id": "p0", "attempts": 8, "successes": 1},
        {"problem_id": "p1", "attempts": 8, "successes": 4},
        {"problem_id": "p2", "attempts": 8, "successes": 6},
        {"problem_id": "p3", "attempts": 8, "successes": 7},
        {"problem_id": "p4", "attempts": 8, "successes": 8},
        {"problem_id": "p5", "attempts": 8, "successes": 0},
    ]
    post_outcomes(client, "run1", outcomes)
    return ids


def draw(client, **body):
    return client.post("/v1/runs/run1/batches", json=body)


def test_proportional_batch_only_draws_positive_weights(client, seeded):
    response = draw(client, size=3, seed=7)
    assert response.status_code == 200
    body = response.json()
    assert body["available"] == 4
    items = body["items"]
    assert len(items) == 3 and len({i["problem_id"] for i in items}) == 3
    assert {i["problem_id"] for i in items} <= {"p0", "p1", "p2", "p3"}
    for item in items:
        p = item["pass_rate"]
        assert item["weight"] == pytest.approx(p * (1 - p)) and item["loss_weight"] == 1.0
        assert item["prompt"] == f"prompt {item['problem_id']}"


def test_same_seed_same_batch_and_other_seeds_differ(client, seeded):
    first = draw(client, size=2, seed=123).json()
    assert draw(client, size=2, seed=123).json() == first
    orders = {
        tuple(i["problem_id"] for i in draw(client, size=2, seed=s).json()["items"])
        for s in range(20)
    }
    assert len(orders) > 1


def test_fewer_eligible_than_size_returns_all(client, seeded):
    body = draw(client, size=50, seed=1).json()
    assert body["available"] == 4
    assert sorted(i["problem_id"] for i in body["items"]) == ["p0", "p1", "p2", "p3"]


def test_uniform_mode_draws_among_estimated_problems_with_loss_weights(client, seeded):
    body = draw(client, size=6, seed=3, mode="uniform").json()
    assert body["available"] == 6
    ids = {i["problem_id"] for i in body["items"]}
    assert ids == {"p0", "p1", "p2", "p3", "p4", "p5"}
    weights = {1 / 8 * 7 / 8, 0.25, 6 / 8 * 2 / 8, 7 / 8 * 1 / 8}
    mean_weight = sum([1 / 8 * 7 / 8, 0.25, 6 / 8 * 2 / 8, 7 / 8 * 1 / 8, 0.0, 0.0]) / 6
    for item in body["items"]:
        assert item["loss_weight"] == pytest.approx(item["weight"] / mean_weight)
        if item["problem_id"] in ("p4", "p5"):
            assert item["weight"] == 0.0 and item["loss_weight"] == 0.0
        else:
            assert any(item["weight"] == pytest.approx(w) for w in weights)


def test_no_outcomes_yet_is_409_saying_why(client):
    make_dataset(client)
    make_run(client)
    response = draw(client, size=4)
    assert response.status_code == 409
    assert "no outcomes" in response.json()["detail"]


def test_all_mastered_or_intractable_is_409_saying_why(client):
    make_dataset(client, n=2)
    make_run(client)
    post_outcomes(
        client,
        "run1",
        [
            {"problem_id": "p0", "attempts": 4, "successes": 4},
            {"problem_id": "p1", "attempts": 4, "successes": 0},
        ],
    )
    response = draw(client, size=4)
    assert response.status_code == 409
    assert "mastered" in response.json()["detail"] and "intractable" in response.json()["detail"]
    assert draw(client, size=4, mode="uniform").status_code == 200


def test_a_write_is_visible_to_the_next_batch(client, seeded):
    assert draw(client, size=10, seed=1).json()["available"] == 4
    post_outcomes(client, "run1", [{"problem_id": "p6", "attempts": 2, "successes": 1}])
    body = draw(client, size=10, seed=1).json()
    assert body["available"] == 5 and "p6" in {i["problem_id"] for i in body["items"]}
    post_outcomes(client, "run1", [{"problem_id": "p0", "attempts": 100, "successes": 100}])
    # p0 is now 101/108 (still frontier); make p1 mastered-looking enough to check a new weight
    weights = {i["problem_id"]: i["weight"] for i in draw(client, size=10, seed=1).json()["items"]}
    assert weights["p0"] == pytest.approx((101 / 108) * (7 / 108))


def test_problems_added_later_join_the_index(client, seeded):
    draw(client, size=1, seed=1)
    client.post("/v1/datasets/math/problems", json={"problems": [{"id": "late", "prompt": "x"}]})
    post_outcomes(client, "run1", [{"problem_id": "late", "attempts": 2, "successes": 1}])
    ids = {i["problem_id"] for i in draw(client, size=10, seed=1).json()["items"]}
    assert "late" in ids


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": 4097}, "size"),
        ({"size": "3"}, "size"),
        ({"size": 2, "mode": "greedy"}, "mode"),
        ({"size": 2, "seed": 1.5}, "seed"),
        ({}, "size"),
    ],
)
def test_bad_batch_requests_are_422(client, seeded, body, field):
    response = draw(client, **body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][1] == field


def test_posterior_run_serves_unseen_problems_with_prior_weight(client):
    make_dataset(client, n=3)
    make_run(client, estimator={"kind": "posterior", "prior_alpha": 1, "prior_beta": 1})
    body = draw(client, size=3, seed=0).json()
    assert body["available"] == 3
    # E[p(1-p)] under Beta(1,1) = 1/6
    assert all(i["weight"] == pytest.approx(1 / 6) for i in body["items"])
    assert all(i["pass_rate"] is None for i in body["items"])
