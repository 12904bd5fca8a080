"""Thompson batches and the epsilon share through the API (SQLite and PostgreSQL): the same
request on the same run state gets the same bytes, a new version draws afresh, requests with
the new fields never take the fast path, and requests without them are what they were."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from service.api.batch_fast_path import ordinary_spec
from service.app import create_app
from service.settings import Settings
from tests.service.helpers import make_dataset, make_run, post_outcomes
from trainer_client import PacedClient

COLUMNS = {"Accept": "application/vnd.paced.batch-columns+json"}


def seeded(client: TestClient) -> None:
    make_dataset(client, n=30)
    make_run(client)
    outcomes = [
        {"problem_id": f"p{i}", "attempts": 8, "successes": i % 9, "step": 1} for i in range(20)
    ]
    assert post_outcomes(client, "run1", outcomes).status_code == 200


def batch(client: TestClient, headers: dict | None = None, **body):
    response = client.post("/v1/runs/run1/batches", json=body, headers=headers or {})
    assert response.status_code == 200, response.text
    return response


@pytest.fixture
def run1(client):
    seeded(client)
    return client


@pytest.mark.parametrize(
    "body",
    [
        {"size": 8, "seed": 5, "mode": "thompson"},
        {"size": 8, "seed": 5, "epsilon": 0.25},
        {"size": 8, "seed": 5, "mode": "thompson", "epsilon": 0.5, "fill": "unseen"},
    ],
)
def test_the_same_request_on_the_same_state_gets_the_same_bytes(run1, body):
    first = batch(run1, **body).content
    assert batch(run1, **body).content == first
    columns = batch(run1, COLUMNS, **body).json()["columns"]
    assert columns["problem_id"] == [
        item["problem_id"] for item in batch(run1, **body).json()["items"]
    ]
    drawn = set()
    for step in range(2, 8):  # each outcome request is a new run version: a new draw
        post_outcomes(
            run1, "run1", [{"problem_id": "p3", "attempts": 8, "successes": 3, "step": step}]
        )
        drawn.add(tuple(i["problem_id"] for i in batch(run1, **body).json()["items"]))
    assert len(drawn) > 3


def test_explored_items_say_so_and_carry_no_loss_weight(run1):
    body = batch(run1, size=10, seed=1, epsilon=0.3).json()
    sources = [item["source"] for item in body["items"]]
    assert sources == ["drawn"] * 7 + ["explored"] * 3
    assert body["sources"] == {"drawn": 7, "fill_unseen": 0, "fill_uniform": 0, "explored": 3}
    explored = body["items"][7:]
    assert all(i["loss_weight"] == 0.0 and i["weight"] == 0.0 for i in explored)
    # p0, p9, p18: 0 of 8; p8, p17: 8 of 8; p20..p29: unseen — the left-out pool
    pool = {"p0", "p9", "p18", "p8", "p17", *(f"p{i}" for i in range(20, 30))}
    assert {i["problem_id"] for i in explored} <= pool
    columns = batch(run1, COLUMNS, size=10, seed=1, epsilon=0.3).json()
    assert columns["columns"]["source"] == sources and columns["sources"] == body["sources"]


def test_a_fill_without_epsilon_reads_as_it_always_did(run1):
    body = batch(run1, size=25, seed=2, fill="unseen").json()
    assert body["sources"] == {"drawn": 15, "fill_unseen": 10, "fill_uniform": 0}
    assert "explored" not in {item["source"] for item in body["items"]}


def test_new_fields_never_take_the_fast_path():
    plain = b'{"size": 4, "seed": 1}'
    assert ordinary_spec(plain, 4096) is not None
    for body in (
        b'{"size": 4, "seed": 1, "mode": "thompson"}',
        b'{"size": 4, "seed": 1, "epsilon": 0.1}',
        b'{"size": 4, "seed": 1, "epsilon": 0}',
    ):
        assert ordinary_spec(body, 4096) is None


@pytest.mark.parametrize(
    "body",
    [
        {"size": 6, "seed": 9},
        {"size": 6, "seed": 9, "epsilon": 0},
        {"size": 6, "seed": 9, "mode": "thompson", "epsilon": 0.5},
    ],
)
def test_route_and_fast_path_answer_the_same_bytes(database_url, body):
    with TestClient(create_app(Settings(database_url=database_url))) as fast:
        seeded(fast)
        fast_bytes = batch(fast, **body).content
    with TestClient(
        create_app(Settings(database_url=database_url, batch_fast_path=False))
    ) as routed:
        assert batch(routed, **body).content == fast_bytes


def test_epsilon_zero_is_the_plain_batch(run1):
    """Defaults keep today's batch: epsilon 0 draws what a body without it draws."""
    assert batch(run1, size=6, seed=4, epsilon=0).content == batch(run1, size=6, seed=4).content


def test_pinned_thompson_draws_and_bad_fields(run1):
    pinned = {"size": 5, "seed": 3, "mode": "thompson", "epsilon": 0.2, "draw_key": "step-7"}
    first = batch(run1, **pinned).json()
    post_outcomes(run1, "run1", [{"problem_id": "p4", "attempts": 8, "successes": 1, "step": 9}])
    assert batch(run1, **pinned).json() == first  # the key pins it, whatever was posted since
    other = run1.post("/v1/runs/run1/batches", json={**pinned, "epsilon": 0.4})
    assert other.status_code == 409
    for bad in ({"epsilon": 1.5}, {"epsilon": -0.1}, {"epsilon": "0.1"}, {"mode": "greedy"}):
        response = run1.post("/v1/runs/run1/batches", json={"size": 3, **bad})
        assert response.status_code == 422, bad


def in_process(client: TestClient) -> httpx.MockTransport:
    """The typed client's requests answered by the app in this process."""

    def forward(request: httpx.Request) -> httpx.Response:
        answer = client.request(
            request.method,
            request.url.raw_path.decode(),
            content=request.content,
            headers=dict(request.headers),
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.MockTransport(forward)


def test_the_client_sends_and_reads_them(run1):
    with PacedClient("http://testserver", transport=in_process(run1)) as paced:
        drawn = paced.batch("run1", 8, seed=5, mode="thompson", epsilon=0.25)
        assert [item.source for item in drawn.items].count("explored") == 2
        assert drawn.sources["explored"] == 2
        again = paced.batch("run1", 8, seed=5, mode="thompson", epsilon=0.25)
        assert [i.problem_id for i in again.items] == [i.problem_id for i in drawn.items]
        with pytest.raises(ValueError):
            paced.batch("run1", 8, epsilon=2.0)
        assert (
            paced.set_priors(
                "run1", [{"problem_id": "p25", "pass_rate": 0.5, "pseudo_attempts": 4}]
            ).problems_with_prior
            == 1
        )
        (item,) = paced.weights("run1", ["p25"]).items
        assert (item.prior_attempts, item.prior_successes, item.pass_rate) == (4.0, 2.0, 0.5)
