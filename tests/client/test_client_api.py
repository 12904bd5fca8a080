"""Each client method sends the v1 contract's request and parses its answer; chunking, paging,
path quoting and client-side validation.

The network is the true external boundary of the client, so it is replaced by
httpx.MockTransport (a fake that records requests and answers with contract-shaped bodies).
Every row of the contract table runs through both twins, so they cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from tests.client.client_fakes import NO_WAIT, Recorder, fail, ok, scripted
from trainer_client import models
from trainer_client.async_client import AsyncPacedClient
from trainer_client.client import PacedClient

BASE = "http://paced.test"
DATASET = {
    "name": "ds",
    "description": "math",
    "problem_count": 2,
    "created_at": "2026-01-01T00:00:00Z",
}
PROBLEM = {"id": "p1", "prompt": "1+1?", "answer": "2", "metadata": {"level": 1}}
ESTIMATOR = {
    "kind": "posterior",
    "prior_alpha": 1.0,
    "prior_beta": 1.0,
    "half_life_steps": None,
    "window": "all",
}
RUN = {
    "name": "r1",
    "dataset": "ds",
    "kernel": {"alpha": 2.0, "beta": 1.0},
    "estimator": ESTIMATOR,
    "step": 3,
    "added_in_v2": True,  # a field this client does not know: must be accepted
}
STATS = {
    "problem_id": "p1",
    "attempts": 8,
    "successes": 3,
    "pass_rate": 0.375,
    "weight": 0.234,
    "zone": "frontier",
    "last_step": 3,
}
WEIGHT = {"problem_id": "p1", "attempts": 8, "successes": 3, "pass_rate": 0.375, "weight": 0.234}
BATCH_ITEM = {
    "problem_id": "p1",
    "prompt": "1+1?",
    "answer": "2",
    "pass_rate": 0.375,
    "weight": 0.234,
    "loss_weight": 1.2,
}
DIFFICULTY = {
    "problems": 2,
    "zones": {"unseen": 1, "intractable": 0, "frontier": 1, "mastered": 0},
    "histogram": {"edges": [0.0, 0.5, 1.0], "counts": [1, 0]},
    "mean_weight": 0.117,
    "effective_problems": 1.0,
}

POINT = {
    "step": 2,
    "zones": {"unseen": 1, "intractable": 0, "frontier": 1, "mastered": 0},
    "mean_pass_rate": 0.375,
    "mean_weight": 0.117,
    "effective_problems": 1.0,
    "created_at": "2026-01-01T00:00:00Z",
}
DIFFERENCE = {
    "problem_id": "p1",
    "prompt": "1+1?",
    "prompt_truncated": False,
    "answer": "2",
    "pass_rates": [1.0, 0.25],
    "attempts": [8.0, 8.0],
    "difference": 0.75,
}
STEP = {
    "step": 3,
    "attempts": 8,
    "successes": 3,
    "pass_rate": 0.375,
    "outcomes": 1,
    "last_accepted_at": "2026-01-01T00:00:00Z",
}


def answer(body: Any, status: int = 200):
    # A factory: an httpx.Response is mutated by the client that reads it, so never share one.
    return lambda: ok(body, status)


# (method, args, kwargs, HTTP method, path, query, JSON body or None, response factory, check)
CONTRACT: list[tuple[str, tuple, dict, str, str, dict, Any, Any, Any]] = [
    (
        "health",
        (),
        {},
        "GET",
        "/healthz",
        {},
        None,
        answer({"status": "ok"}),
        lambda r: r.status == "ok",
    ),
    (
        "limits",
        (),
        {},
        "GET",
        "/openapi.json",
        {},
        None,
        answer(
            {
                "components": {
                    "schemas": {
                        "OutcomesPost": {"properties": {"outcomes": {"maxItems": 500}}},
                        "BatchRequest": {"properties": {"size": {"maximum": 64}}},
                    }
                }
            }
        ),
        lambda r: r.max_items_per_request == 500 and r.max_batch_size == 64,
    ),
    (
        "list_datasets",
        (),
        {},
        "GET",
        "/v1/datasets",
        {},
        None,
        answer({"items": [DATASET]}),
        lambda r: [d.name for d in r] == ["ds"],
    ),
    (
        "create_dataset",
        ("ds", "math"),
        {},
        "POST",
        "/v1/datasets",
        {},
        {"name": "ds", "description": "math"},
        answer(DATASET, 201),
        lambda r: r.problem_count == 2,
    ),
    (
        "get_dataset",
        ("ds",),
        {},
        "GET",
        "/v1/datasets/ds",
        {},
        None,
        answer(DATASET),
        lambda r: r.created_at.year == 2026,
    ),
    (
        "upsert_problems",
        ("ds", [models.Problem(id="p0", prompt="1+0?"), PROBLEM]),
        {},
        "POST",
        "/v1/datasets/ds/problems",
        {},
        {"problems": [{"id": "p0", "prompt": "1+0?"}, PROBLEM]},
        answer({"inserted": 1, "updated": 1}),
        lambda r: (r.inserted, r.updated) == (1, 1),
    ),
    (
        "get_problem",
        ("ds", "p1"),
        {},
        "GET",
        "/v1/datasets/ds/problems/p1",
        {},
        None,
        answer(PROBLEM),
        lambda r: r.metadata == {"level": 1},
    ),
    (
        "list_runs",
        (),
        {},
        "GET",
        "/v1/runs",
        {},
        None,
        answer({"items": [RUN]}),
        lambda r: r[0].estimator.kind == "posterior",
    ),
    (
        "create_run",
        ("r1", "ds"),
        {"kernel": {"alpha": 2}, "estimator": ESTIMATOR},
        "POST",
        "/v1/runs",
        {},
        {
            "name": "r1",
            "dataset": "ds",
            "kernel": {"alpha": 2.0, "beta": 1.0},
            # A null setting is left out: the service fills its default (window: 'latest').
            "estimator": {k: v for k, v in ESTIMATOR.items() if v is not None},
        },
        answer(RUN, 201),
        lambda r: r.kernel.alpha == 2.0,
    ),
    (
        "get_run",
        ("r1",),
        {},
        "GET",
        "/v1/runs/r1",
        {},
        None,
        answer(RUN),
        lambda r: r.step == 3 and r.model_extra == {"added_in_v2": True},
    ),
    (
        "post_outcomes",
        (
            "r1",
            [
                models.Outcome(problem_id="p1", attempts=8, successes=3, step=2),
                {"problem_id": "p2", "attempts": 4, "successes": 0},
            ],
        ),
        {},
        "POST",
        "/v1/runs/r1/outcomes",
        {},
        {
            "outcomes": [
                {"problem_id": "p1", "attempts": 8, "successes": 3, "step": 2},
                {"problem_id": "p2", "attempts": 4, "successes": 0, "step": None},
            ]
        },
        answer({"accepted": 2}),
        lambda r: r.accepted == 2,
    ),
    (
        "get_problem_stats",
        ("r1", "p1"),
        {},
        "GET",
        "/v1/runs/r1/problems/p1",
        {},
        None,
        answer(STATS),
        lambda r: r.zone == "frontier" and r.pass_rate == 0.375,
    ),
    (
        "weights",
        ("r1",),
        {"problem_ids": ["p1"]},
        "POST",
        "/v1/runs/r1/weights",
        {},
        {"problem_ids": ["p1"]},
        answer({"items": [WEIGHT], "next_cursor": None}),
        lambda r: r.items[0].weight == 0.234 and r.next_cursor is None,
    ),
    (
        "batch",
        ("r1", 4),
        {"seed": 7, "mode": "uniform"},
        "POST",
        "/v1/runs/r1/batches",
        {},
        {"size": 4, "seed": 7, "mode": "uniform"},
        answer({"items": [BATCH_ITEM], "available": 1}),
        lambda r: r.available == 1 and r.items[0].loss_weight == 1.2,
    ),
    (
        "set_priors",
        ("r1", [{"problem_id": "p1", "pass_rate": 0.25, "pseudo_attempts": 16}]),
        {"max_pseudo_attempts": 8, "replace": True},
        "POST",
        "/v1/runs/r1/priors",
        {},
        {
            "items": [{"problem_id": "p1", "pass_rate": 0.25, "pseudo_attempts": 16.0}],
            "max_pseudo_attempts": 8,
            "replace": True,
        },
        answer({"updated": 1, "problems_with_prior": 3}),
        lambda r: (r.updated, r.problems_with_prior) == (1, 3),
    ),
    (
        "copy_priors",
        ("r1", "r0"),
        {"max_pseudo_attempts": 4},
        "POST",
        "/v1/runs/r1/priors/copy",
        {},
        {"from_run": "r0", "max_pseudo_attempts": 4},
        answer({"updated": 5, "problems_with_prior": 5}),
        lambda r: r.updated == 5,
    ),
    (
        "rollout_queue",
        ("r1",),
        {"limit": 5},
        "GET",
        "/v1/runs/r1/rollout-queue",
        {"limit": "5"},
        None,
        answer(
            {"items": [{"problem_id": "p2", "prompt": "2+2?", "answer": "4", "reason": "unseen"}]}
        ),
        lambda r: r.items[0].reason == "unseen",
    ),
    (
        "difficulty",
        ("r1",),
        {"bins": 2},
        "GET",
        "/v1/runs/r1/difficulty",
        {"bins": "2"},
        None,
        answer(DIFFICULTY),
        lambda r: r.zones.frontier == 1 and r.histogram.counts == [1, 0],
    ),
    (
        "overview",
        ("r1",),
        {"bins": 2, "top": 1},
        "GET",
        "/v1/runs/r1/overview",
        {"bins": "2", "top": "1"},
        None,
        answer(
            {
                "run": RUN,
                "difficulty": DIFFICULTY,
                "mean_pass_rate": 0.5,
                "top_frontier": [
                    {
                        "problem_id": "p1",
                        "attempts": 8.0,
                        "successes": 4.0,
                        "pass_rate": 0.5,
                        "weight": 0.25,
                        "last_step": 3,
                        "prompt": "1+1?",
                    }
                ],
            }
        ),
        lambda r: r.top_frontier[0].weight == 0.25 and r.recently_mastered == [],
    ),
    (
        "history",
        ("r1",),
        {},
        "GET",
        "/v1/runs/r1/history",
        {},
        None,
        answer({"items": [{"step": 1, "mean_weight": 0.2}]}),
        lambda r: r.items[0]["step"] == 1,
    ),
    (
        "runs_summary",
        (),
        {"dataset": "ds", "name": "r*"},
        "GET",
        "/v1/runs-summary",
        {"dataset": "ds", "name": "r*"},
        None,
        answer({"items": [{"run": RUN, "latest": POINT}, {"run": RUN, "latest": None}]}),
        lambda r: r[0].latest.zones.frontier == 1 and r[0].run.step == 3 and r[1].latest is None,
    ),
    (
        "compare",
        (["r1", "r2", "r3"],),
        {"pair": ["r3", "r1"], "top": 5},
        "GET",
        "/v1/compare",
        {"runs": "r1,r2,r3", "pair": "r3,r1", "bins": "20", "top": "5"},
        None,
        answer(
            {
                "dataset": "ds",
                "runs": [{"run": RUN, "difficulty": DIFFICULTY, "history": [POINT]}],
                "pair": ["r3", "r1"],
                "differences": [DIFFERENCE],
            }
        ),
        lambda r: r.runs[0].history[0].step == 2 and r.differences[0].pass_rates == [1.0, 0.25],
    ),
    (
        "problem_history",
        ("r1", "p1"),
        {},
        "GET",
        "/v1/runs/r1/problem-history/p1",
        {},
        None,
        answer({"problem": PROBLEM, "stats": STATS, "steps": [STEP], "complete": True}),
        lambda r: r.steps[0].pass_rate == 0.375 and r.problem.prompt == "1+1?",
    ),
]


def _call_sync(recorder: Recorder, name: str, args: tuple, kwargs: dict) -> Any:
    with PacedClient(BASE, transport=recorder.transport(), backoff=NO_WAIT) as paced:
        return getattr(paced, name)(*args, **kwargs)


def _call_async(recorder: Recorder, name: str, args: tuple, kwargs: dict) -> Any:
    async def main():
        async with AsyncPacedClient(BASE, transport=recorder.transport(), backoff=NO_WAIT) as p:
            return await getattr(p, name)(*args, **kwargs)

    return asyncio.run(main())


@pytest.mark.parametrize("call", [_call_sync, _call_async], ids=["sync", "async"])
@pytest.mark.parametrize("row", CONTRACT, ids=[row[0] for row in CONTRACT])
def test_every_method_speaks_the_v1_contract(call, row):
    name, args, kwargs, method, path, query, body, response, check = row
    recorder = scripted(response())
    result = call(recorder, name, args, kwargs)
    (request,) = recorder.requests
    assert request.method == method
    assert request.url.path == path
    assert dict(request.url.params) == query
    if body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == body
    assert check(result)


def test_both_twins_offer_the_same_methods():
    def public(cls):
        return {n for n in dir(cls) if not n.startswith("_")}

    assert public(PacedClient) == public(AsyncPacedClient)
    # Besides the endpoints: paging, closing, and the httpx client (to add event hooks).
    extras = {"iter_weights", "close", "http_client"}
    assert {row[0] for row in CONTRACT} | extras == public(PacedClient)


def test_token_is_sent_as_bearer_and_base_url_prefix_is_kept():
    recorder = scripted(ok({"status": "ok"}))
    with PacedClient(
        "http://proxy.test/paced/", token="s3cret", transport=recorder.transport()
    ) as paced:
        paced.health()
    (request,) = recorder.requests
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert str(request.url) == "http://proxy.test/paced/healthz"


def test_base_url_and_token_are_set_once_on_the_owned_httpx_client():
    for twin in (PacedClient, AsyncPacedClient):
        paced = twin("http://proxy.test/paced/", token="s3cret")
        http = paced._http
        assert str(http.base_url) == "http://proxy.test/paced/"
        assert http.headers["Authorization"] == "Bearer s3cret"
        assert http.headers["User-Agent"].startswith("paced-trainer-client/")
        closing = paced.close()
        if asyncio.iscoroutine(closing):
            asyncio.run(closing)


def test_an_injected_client_keeps_its_config_and_gets_url_and_token_per_request():
    recorder = scripted(ok({"status": "ok"}))
    http = httpx.Client(transport=recorder.transport())
    with PacedClient("http://proxy.test/paced", token="s3cret", http_client=http) as paced:
        paced.health()
    (request,) = recorder.requests
    assert str(request.url) == "http://proxy.test/paced/healthz"
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert "authorization" not in http.headers and str(http.base_url) == ""
    http.close()


def test_names_and_problem_ids_are_quoted_as_single_path_segments():
    recorder = scripted(ok(PROBLEM))
    with PacedClient(BASE, transport=recorder.transport()) as paced:
        paced.get_problem("ds", "gsm8k/12 a?b")
    assert recorder.requests[0].url.raw_path == b"/v1/datasets/ds/problems/gsm8k%2F12%20a%3Fb"


# ---- chunking ----------------------------------------------------------------------------------


def _accept_all(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    if "outcomes" in body:
        return ok({"accepted": len(body["outcomes"])})
    return ok({"inserted": len(body["problems"]) - 1, "updated": 1})


def test_upsert_problems_splits_into_chunks_and_sums_the_counts():
    recorder = Recorder(_accept_all)
    problems = [{"id": f"p{i}", "prompt": f"{i}+1?", "answer": str(i + 1)} for i in range(25)]
    with PacedClient(BASE, transport=recorder.transport(), chunk_size=10) as paced:
        result = paced.upsert_problems("ds", problems)
    sent = [[p["id"] for p in body["problems"]] for body in recorder.bodies()]
    assert [len(ids) for ids in sent] == [10, 10, 5]
    assert sum(sent, []) == [p["id"] for p in problems]  # every problem once, in order
    assert (result.inserted, result.updated) == (22, 3)


def test_outcomes_over_the_service_limit_go_in_two_requests():
    recorder = Recorder(_accept_all)
    outcomes = [
        {"problem_id": f"p{i}", "attempts": 2, "successes": i % 3 % 2} for i in range(10_001)
    ]
    with PacedClient(BASE, transport=recorder.transport()) as paced:
        assert paced.post_outcomes("r1", outcomes).accepted == 10_001
    assert [len(b["outcomes"]) for b in recorder.bodies()] == [10_000, 1]


def test_each_outcome_chunk_has_its_own_key_kept_across_its_retries():
    answers = iter([ok({"accepted": 2}), fail(503), ok({"accepted": 2}), ok({"accepted": 1})])
    recorder = Recorder(lambda request: next(answers))
    outcomes = [{"problem_id": f"p{i}", "attempts": 1, "successes": 1} for i in range(5)]
    with PacedClient(BASE, transport=recorder.transport(), chunk_size=2, backoff=NO_WAIT) as p:
        assert p.post_outcomes("r1", outcomes).accepted == 5
    keys = [r.headers["Idempotency-Key"] for r in recorder.requests]
    assert keys[1] == keys[2]  # the retried second chunk
    assert len({keys[0], keys[1], keys[3]}) == 3
    for key in keys:
        uuid.UUID(key)


def test_a_caller_key_is_derived_per_chunk_so_a_replay_sends_the_same_keys():
    recorder = Recorder(_accept_all)
    outcomes = [{"problem_id": f"p{i}", "attempts": 1, "successes": 0} for i in range(5)]
    with PacedClient(BASE, transport=recorder.transport(), chunk_size=2) as paced:
        paced.post_outcomes("r1", outcomes, idempotency_key="step-9")
        paced.post_outcomes("r1", outcomes, idempotency_key="step-9")
    keys = [r.headers["Idempotency-Key"] for r in recorder.requests]
    assert keys == ["step-9-0", "step-9-1", "step-9-2"] * 2


def test_empty_lists_send_nothing():
    recorder = Recorder(_accept_all)
    with PacedClient(BASE, transport=recorder.transport()) as paced:
        assert paced.post_outcomes("r1", []).accepted == 0
        assert paced.upsert_problems("ds", []).inserted == 0
    assert recorder.requests == []


# ---- client-side validation: a bad item must fail before any chunk is applied ------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"problem_id": "p9", "attempts": 0, "successes": 0},
        {"problem_id": "p9", "attempts": 2, "successes": 3},
        {"problem_id": "p9", "attempts": 2, "successes": -1},
        {"problem_id": "p9", "attempts": 2, "successes": 1, "step": -1},
        {"attempts": 2, "successes": 1},
    ],
)
def test_invalid_outcome_anywhere_fails_before_any_request(bad):
    recorder = Recorder(_accept_all)
    good = [{"problem_id": f"p{i}", "attempts": 1, "successes": 1} for i in range(4)]
    with PacedClient(BASE, transport=recorder.transport(), chunk_size=2) as paced:
        with pytest.raises(ValidationError):
            paced.post_outcomes("r1", [*good, bad])
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("kernel", "estimator"),
    [
        ({"alpha": 0}, None),
        ({"beta": float("nan")}, None),
        (None, {"kind": "bayes"}),
        (None, {"prior_alpha": float("inf")}),
        (None, {"half_life_steps": -5}),
    ],
)
def test_invalid_run_settings_fail_before_any_request(kernel, estimator):
    recorder = Recorder(_accept_all)
    with PacedClient(BASE, transport=recorder.transport()) as paced, pytest.raises(ValueError):
        paced.create_run("r1", "ds", kernel=kernel, estimator=estimator)
    assert recorder.requests == []


def test_unknown_batch_mode_fails_before_any_request():
    recorder = Recorder(_accept_all)
    with PacedClient(BASE, transport=recorder.transport()) as paced, pytest.raises(ValueError):
        paced.batch("r1", 4, mode="greedy")
    assert recorder.requests == []


# ---- paging ------------------------------------------------------------------------------------


def _paged_weights(total: int):
    """A fake /weights that pages `total` problems by an integer offset cursor."""

    def respond(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        start, limit = int(body.get("cursor", 0)), body["limit"]
        end = min(start + limit, total)
        items = [dict(WEIGHT, problem_id=f"p{i}") for i in range(start, end)]
        return ok({"items": items, "next_cursor": str(end) if end < total else None})

    return Recorder(respond)


def test_iter_weights_follows_next_cursor_to_the_end():
    recorder = _paged_weights(7)
    with PacedClient(BASE, transport=recorder.transport()) as paced:
        ids = [item.problem_id for item in paced.iter_weights("r1", limit=3)]
    assert ids == [f"p{i}" for i in range(7)]
    assert [b.get("cursor") for b in recorder.bodies()] == [None, "3", "6"]


def test_async_iter_weights_follows_next_cursor_to_the_end():
    recorder = _paged_weights(5)

    async def main():
        async with AsyncPacedClient(BASE, transport=recorder.transport()) as paced:
            return [item.problem_id async for item in paced.iter_weights("r1", limit=2)]

    assert asyncio.run(main()) == [f"p{i}" for i in range(5)]
    assert len(recorder.requests) == 3


def test_injected_http_client_is_used_and_left_open():
    recorder = scripted(ok({"status": "ok"}))
    http = httpx.Client(transport=recorder.transport())
    with PacedClient(BASE, http_client=http) as paced:
        paced.health()
    assert len(recorder.requests) == 1 and not http.is_closed
    http.close()
