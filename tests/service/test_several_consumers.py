"""Batch fill, rollout leases, skip_leased draws and pinned draws (API v1, both backends)."""

from __future__ import annotations

import time

import pytest

from tests.service.helpers import make_dataset, make_run, post_outcomes


def draw(client, **body):
    return client.post("/v1/runs/run1/batches", json=body)


def queue(client, **params):
    response = client.get("/v1/runs/run1/rollout-queue", params=params)
    assert response.status_code == 200, response.text
    return [item["problem_id"] for item in response.json()["items"]]


def ids_of(body) -> list[str]:
    return [item["problem_id"] for item in body["items"]]


@pytest.fixture
def one_frontier(client):
    """p0 frontier (the only positive weight), p1 mastered, p2 intractable, p3..p9 unseen."""
    make_dataset(client, n=10)
    make_run(client)
    post_outcomes(
        client,
        "run1",
        [
            {"problem_id": "p0", "attempts": 4, "successes": 2},
            {"problem_id": "p1", "attempts": 4, "successes": 4},
            {"problem_id": "p2", "attempts": 4, "successes": 0},
        ],
    )


def test_without_new_fields_the_batch_is_unchanged(client, one_frontier):
    body = draw(client, size=2, seed=5).json()
    assert ids_of(body) == ["p0"] and body["available"] == 1
    assert "sources" not in body and "source" not in body["items"][0]


def test_fill_unseen_then_uniform_gives_exactly_size_and_says_from_where(client, one_frontier):
    body = draw(client, size=9, seed=5, fill="unseen_then_uniform").json()
    ids = ids_of(body)
    assert len(ids) == 9 == len(set(ids)) and ids[0] == "p0"
    assert body["sources"] == {"drawn": 1, "fill_unseen": 7, "fill_uniform": 1}
    assert [i["source"] for i in body["items"]] == ["drawn"] + ["fill_unseen"] * 7 + [
        "fill_uniform"
    ]
    assert set(ids[1:8]) == {f"p{i}" for i in range(3, 10)}  # every unseen one first
    assert ids[8] in {"p1", "p2"}
    assert [i["loss_weight"] for i in body["items"]] == [1.0] + [0.0] * 8
    assert body["available"] == 1
    # Deterministic for a seed; the fill order depends on it.
    assert draw(client, size=9, seed=5, fill="unseen_then_uniform").json() == body
    orders = {tuple(ids_of(draw(client, size=3, seed=s, fill="unseen").json())) for s in range(8)}
    assert len(orders) > 1


def test_fill_unseen_stops_at_the_unseen_and_the_dataset_bounds_every_fill(client, one_frontier):
    body = draw(client, size=10, seed=1, fill="unseen").json()
    assert body["sources"] == {"drawn": 1, "fill_unseen": 7, "fill_uniform": 0}
    body = draw(client, size=50, seed=1, fill="unseen_then_uniform").json()
    assert sorted(ids_of(body)) == sorted(f"p{i}" for i in range(10))
    # A fill answers even before any outcome (the plain draw is a 409 then).
    make_dataset(client, name="fresh", n=3)
    make_run(client, name="r2", dataset="fresh")
    assert client.post("/v1/runs/r2/batches", json={"size": 2}).status_code == 409
    response = client.post("/v1/runs/r2/batches", json={"size": 2, "fill": "unseen"})
    assert response.status_code == 200 and len(response.json()["items"]) == 2


def test_rollout_queue_claims_are_disjoint_until_graded(client, one_frontier):
    first = queue(client, limit=4, claimer="a", lease_s=60)
    second = queue(client, limit=4, claimer="b", lease_s=60)
    assert len(first) == 4 == len(second) and not set(first) & set(second)
    # Without a claimer nothing changes: the plain queue still lists everything.
    assert set(first + second) <= set(queue(client, limit=10))
    assert not set(queue(client, limit=10, skip_leased=True)) & set(first + second)
    # Grading one of a's problems frees it; the others stay leased.
    post_outcomes(client, "run1", [{"problem_id": first[0], "attempts": 4, "successes": 1}])
    third = queue(client, limit=10, claimer="c")
    assert first[0] in third and not set(third) & (set(first[1:]) | set(second))


def test_a_lease_expires(client, one_frontier):
    # Leases long enough that b's claim lands within a's even on a loaded CI machine (0.3 s
    # was not: one request there took longer).
    first = queue(client, limit=3, claimer="a", lease_s=1.5)
    assert not set(queue(client, limit=3, claimer="b", lease_s=1.5)) & set(first)
    time.sleep(1.55)
    assert set(first) <= set(queue(client, limit=10, claimer="b"))


def test_lease_s_without_claimer_is_422_naming_it(client, one_frontier):
    response = client.get("/v1/runs/run1/rollout-queue", params={"lease_s": 5})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "lease_s"]
    response = draw(client, size=1, lease={"claimer": "a", "ttl_s": 0})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][1] == "lease"


def test_skip_leased_draws_pass_over_drawn_but_ungraded_problems(client, one_frontier):
    spec = {"size": 3, "seed": 1, "fill": "unseen_then_uniform", "skip_leased": True}
    first = ids_of(draw(client, **spec, lease={"claimer": "trainer"}).json())
    second = draw(client, **{**spec, "seed": 2}, lease={"claimer": "trainer"}).json()
    assert not set(first) & set(ids_of(second))
    assert second["available"] == 0  # p0, the only weighted problem, is leased
    # Once graded, first's problems can be drawn again.
    post_outcomes(client, "run1", [{"problem_id": p, "attempts": 2, "successes": 1} for p in first])
    third = ids_of(draw(client, size=10, seed=3, skip_leased=True).json())
    assert set(first) <= set(third)
    # Every problem leased, nothing to fill with: 409 that says why.
    everything = draw(client, size=10, seed=4, fill="unseen_then_uniform", lease={"claimer": "x"})
    assert everything.status_code == 200
    response = draw(client, size=1, fill="unseen_then_uniform", skip_leased=True)
    assert response.status_code == 409 and "skip_leased" in response.json()["detail"]


def test_a_draw_key_pins_the_batch_whatever_is_posted_in_between(client, one_frontier):
    spec = {"size": 4, "seed": 7, "fill": "unseen_then_uniform", "draw_key": "step-1"}
    first = draw(client, **spec).json()
    post_outcomes(
        client, "run1", [{"problem_id": f"p{i}", "attempts": 4, "successes": 2} for i in range(10)]
    )
    assert draw(client, **spec).json() == first
    # Another key draws afresh from the new weights (all ten are frontier now).
    fresh = draw(client, **{**spec, "draw_key": "step-2"}).json()
    assert fresh["sources"]["drawn"] == 4 and fresh["available"] == 10
    # The same key with another request is a caller error.
    response = draw(client, **{**spec, "seed": 8})
    assert response.status_code == 409 and "draw_key" in response.json()["detail"]
    # A lease is not part of what the key pins (ranks may name themselves differently).
    assert draw(client, **spec, lease={"claimer": "rank1"}).json() == first
