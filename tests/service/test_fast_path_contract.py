"""The batch fast path (api/batch_fast_path.py) against the FastAPI route it stands in for:
two services on one database, one with `batch_fast_path` on and one with it off, asked the
same requests. A plain request is answered by the fast path itself with the route's exact
200 (status, headers, bytes); every other request reaches the route and gets exactly its
status and body. Freshness, leases and pinned draws keep working with the fast path on."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from service.api.batch_fast_path import BatchFastPath
from service.app import create_app
from service.settings import Settings
from tests.service.helpers import make_dataset, post_outcomes

ADMIN = "admin-secret-token"
BATCHES = "/v1/runs/run1/batches"
COLUMNS = "application/vnd.paced.batch-columns+json"
MAX_SIZE = 64
MAX_BODY = 4096


class Passed:
    """Wraps what the fast path hands requests on to: counts the batch requests it did not
    answer itself."""

    def __init__(self, app) -> None:
        self.app = app
        self.batches = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/batches"):
            self.batches += 1
        await self.app(scope, receive, send)


def fast_path_of(client: TestClient) -> BatchFastPath:
    app = client.app
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, BatchFastPath):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, BatchFastPath)
    return layer


@dataclass
class Pair:
    fast: TestClient
    route: TestClient
    passed: Passed  # the fast service's: requests its fast path handed on to the route
    run_token: str
    other_token: str

    def both(self, method: str = "POST", path: str = BATCHES, **kwargs):
        """(fast path's response, route's response) to the same request; the first one
        also says whether the fast path answered it itself."""
        before = self.passed.batches
        fast = self.fast.request(method, path, **kwargs)
        served = self.passed.batches == before
        return fast, self.route.request(method, path, **kwargs), served


def admin(extra: dict | None = None) -> dict:
    return {"Authorization": f"Bearer {ADMIN}", **(extra or {})}


@contextlib.contextmanager
def make_service(database_url: str, fast: bool, sync_interval_s: float) -> Iterator[TestClient]:
    settings = Settings(
        database_url=database_url,
        admin_token=ADMIN,
        sync_interval_s=sync_interval_s,
        max_batch_size=MAX_SIZE,
        max_body_bytes=MAX_BODY,
        batch_fast_path=fast,
    )
    app = create_app(settings)
    try:
        with TestClient(app, headers=admin()) as client:
            yield client
    finally:
        app.state.ctx.engine.dispose()  # its pooled connections, before the next test's


@pytest.fixture(params=[60.0, 0.0], ids=["warm", "synced-each-request"])
def pair(database_url, request) -> Iterator[Pair]:
    with (
        make_service(database_url, True, request.param) as fast,
        make_service(database_url, False, request.param) as route,
    ):
        texts = make_dataset(fast, n=40)
        problems = [
            {"id": "p3", "prompt": 'é漢字🙂 "quoted" \\ back\nslash \u2028', "answer": None},
            {"id": "p5", "prompt": "</script>\x01\x1f", "answer": ""},
        ]
        assert fast.post("/v1/datasets/math/problems", json={"problems": problems}).is_success
        tokens = []
        for run in ("run1", "run2", "empty"):
            created = fast.post("/v1/runs", json={"name": run, "dataset": "math"})
            assert created.status_code == 201, created.text
            tokens.append(created.json()["token"])
        outcomes = [
            {"problem_id": pid, "attempts": 8, "successes": i % 9}
            for i, pid in enumerate(texts)
            if i % 4
        ]
        for run in ("run1", "run2"):
            assert post_outcomes(fast, run, outcomes).status_code == 200
        passed = Passed(fast_path_of_started(fast).app)
        fast_path_of(fast).app = passed
        yield Pair(fast, route, passed, tokens[0], tokens[1])


def fast_path_of_started(client: TestClient) -> BatchFastPath:
    client.get("/healthz")  # the middleware stack is built on the first request
    return fast_path_of(client)


def same(fast, route) -> None:
    assert (fast.status_code, fast.content) == (route.status_code, route.content), (
        fast.text,
        route.text,
    )
    assert fast.headers.items() == route.headers.items()


ORDINARY = [
    {"size": 5, "seed": 1},
    {"size": 12, "seed": 2, "mode": "uniform"},
    {"size": 30, "seed": 3, "fill": "unseen"},
    {"size": MAX_SIZE, "seed": 4, "mode": "uniform", "fill": "unseen_then_uniform"},
    {"size": 40, "seed": 5, "fill": "none", "mode": "proportional"},
    {"size": 8, "seed": 2**64 - 1},
    {"size": 8, "seed": -(2**63)},
    {"size": 8, "seed": 6, "draw_key": None, "lease": None, "skip_leased": False},
]


@pytest.mark.parametrize("accept", [None, COLUMNS, f"application/json, {COLUMNS};q=0.9"])
def test_plain_requests_are_answered_by_the_fast_path_with_the_routes_bytes(pair, accept):
    headers = {} if accept is None else {"Accept": accept}
    for body in ORDINARY:
        for _ in range(2):  # the first may fill the prompt cache, the second finds it warm
            fast, route, served = pair.both(json=body, headers=headers)
            assert fast.status_code == 200 and served, body
            same(fast, route)
    # Sent as JSON under each spelling the route parses as JSON, or with no Content-Type.
    raw = b'{"size": 9, "seed": 11}'
    for content_type in (None, "application/json; charset=utf-8", "Application/JSON"):
        extra = {} if content_type is None else {"Content-Type": content_type}
        fast, route, served = pair.both(content=raw, headers={**headers, **extra})
        assert fast.status_code == 200, content_type
        same(fast, route)


def test_every_token_the_route_accepts_is_accepted_and_no_other(pair):
    body = {"size": 6, "seed": 9}
    cases = {
        "run's own token": f"Bearer {pair.run_token}",
        "scheme in capitals": f"BEARER {pair.run_token}",
        "spaces around it": f"Bearer   {pair.run_token}  ",
        "admin": f"bearer {ADMIN}",
        "another run's token": f"Bearer {pair.other_token}",
        "unknown token": "Bearer paced_run_nope",
        "no token": "Bearer ",
        "other scheme": f"Basic {pair.run_token}",
        "nothing": "",
    }
    statuses = {}
    for name, header in cases.items():
        for _ in range(2):  # the first use of a run token is looked up, then remembered
            fast, route, _ = pair.both(json=body, headers={"Authorization": header})
            same(fast, route)
            statuses[name] = fast.status_code
    assert statuses == {
        "run's own token": 200,
        "scheme in capitals": 200,
        "spaces around it": 200,
        "admin": 200,
        "another run's token": 403,
        "unknown token": 401,
        "no token": 401,
        "other scheme": 401,
        "nothing": 401,
    }
    # Once the route has seen the run's token, the fast path answers it from memory.
    _, _, served = pair.both(json=body, headers={"Authorization": f"Bearer {pair.run_token}"})
    assert served
    without = TestClient(pair.fast.app)  # no Authorization header at all
    unauthorised = without.post(BATCHES, json=body)
    assert unauthorised.status_code == 401
    assert unauthorised.content == TestClient(pair.route.app).post(BATCHES, json=body).content


UNUSUAL = {
    "unknown field": {"json": {"size": 5, "seed": 1, "colour": "red"}},
    "size as a string": {"json": {"size": "5", "seed": 1}},
    "size integral float": {"json": {"size": 5.0, "seed": 1}},
    "size fractional": {"json": {"size": 5.5, "seed": 1}},
    "size true": {"json": {"size": True, "seed": 1}},
    "size null": {"json": {"size": None}},
    "size missing": {"json": {"seed": 1}},
    "size 0": {"json": {"size": 0, "seed": 1}},
    "size over the limit": {"json": {"size": MAX_SIZE + 1, "seed": 1}},
    "seed as a string": {"json": {"size": 5, "seed": "1"}},
    "seed above u64": {"json": {"size": 5, "seed": 2**64}},
    "seed below i64": {"json": {"size": 5, "seed": -(2**63) - 1}},
    "seed float": {"json": {"size": 5, "seed": 1.5}},
    "mode unknown": {"json": {"size": 5, "seed": 1, "mode": "greedy"}},
    "mode null": {"json": {"size": 5, "seed": 1, "mode": None}},
    "fill unknown": {"json": {"size": 5, "seed": 1, "fill": "all"}},
    "fill null": {"json": {"size": 5, "seed": 1, "fill": None}},
    "skip_leased null": {"json": {"size": 5, "seed": 1, "skip_leased": None}},
    "skip_leased 0": {"json": {"size": 5, "seed": 1, "skip_leased": 0}},
    "draw_key empty": {"json": {"size": 5, "seed": 1, "draw_key": ""}},
    "lease without claimer": {"json": {"size": 5, "seed": 1, "lease": {"ttl_s": 5}}},
    "a list": {"json": [{"size": 5}]},
    "a number": {"json": 5},
    "not JSON": {"content": b"size=5", "headers": {"Content-Type": "application/json"}},
    "not JSON, no type": {"content": b"{size: 5}"},
    "NaN seed": {"content": b'{"size": 5, "seed": NaN}'},
    "empty body": {"content": b"", "headers": {"Content-Type": "application/json"}},
    "form type": {
        "content": b'{"size": 5, "seed": 1}',
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    },
    "text type": {"content": b'{"size": 5}', "headers": {"Content-Type": "text/plain"}},
    "json-like type": {
        "content": b'{"size": 5, "seed": 1}',
        "headers": {"Content-Type": "application/jsonx"},
    },
    "body over the limit": {"content": b'{"size": 5, "seed": 1, "x": "' + b"y" * MAX_BODY + b'"}'},
    "json+ type": {
        "content": b'{"size": 5, "seed": 1}',
        "headers": {"Content-Type": "application/merge-patch+json"},
    },
    "json+ type, two slashes": {
        "content": b'{"size": 5, "seed": 1}',
        "headers": {"Content-Type": "application/a/b+json"},
    },
    "empty type": {"content": b'{"size": 5, "seed": 1}', "headers": {"Content-Type": ""}},
    "duplicate key": {"content": b'{"size": 5, "size": 6, "seed": 1}'},
}


@pytest.mark.parametrize("name", list(UNUSUAL))
def test_unusual_requests_get_exactly_the_routes_answer(pair, name):
    fast, route, served = pair.both(**UNUSUAL[name])
    same(fast, route)
    if fast.status_code not in (200, 413):  # 413: the body limit answers before either
        assert not served  # an error is always the route's own


def test_a_chunked_body_over_the_limit_is_the_body_limits_413(pair):
    def chunks():
        yield b'{"size": 5, "seed": 1, "x": "'
        for _ in range(MAX_BODY // 512 + 1):
            yield b"y" * 512
        yield b'"}'

    fast = pair.fast.post(BATCHES, content=chunks())
    route = pair.route.post(BATCHES, content=chunks())
    assert "content-length" not in fast.request.headers
    assert fast.status_code == 413
    same(fast, route)


def test_unknown_runs_nothing_to_draw_and_other_paths_are_the_routes(pair):
    cases = [
        ("POST", "/v1/runs/nope/batches", {"json": {"size": 5, "seed": 1}}),  # 404
        ("POST", "/v1/runs/empty/batches", {"json": {"size": 5, "seed": 1}}),  # 409
        ("POST", "/v1/runs/run1/batches/", {"json": {"size": 5, "seed": 1}}),
        ("POST", "/v1/runs//batches", {"json": {"size": 5, "seed": 1}}),
        ("POST", "/v1/runs/a/b/batches", {"json": {"size": 5, "seed": 1}}),
        ("GET", BATCHES, {}),  # 405
        ("PUT", BATCHES, {"json": {"size": 5}}),
    ]
    statuses = []
    for method, path, kwargs in cases:
        fast, route, _ = pair.both(method, path, **kwargs)
        same(fast, route)
        statuses.append(fast.status_code)
    assert statuses[:2] == [404, 409] and statuses[5] == 405


def test_claimed_draws_go_to_the_route_and_keep_working(pair):
    pinned = {"size": 6, "seed": 3, "draw_key": "step-1", "fill": "unseen_then_uniform"}
    first, again, served = pair.both(json=pinned)
    assert first.status_code == 200 and not served
    assert again.content == first.content  # the other service serves the pinned draw
    post_outcomes(pair.fast, "run1", [{"problem_id": "p1", "attempts": 2, "successes": 1}])
    assert pair.fast.post(BATCHES, json=pinned).content == first.content
    other = pair.fast.post(BATCHES, json={**pinned, "seed": 4})
    assert other.status_code == 409
    # A lease, then skip_leased draws pass over the leased problems, on either service.
    leased = pair.fast.post(BATCHES, json={"size": 10, "seed": 5, "lease": {"claimer": "a"}})
    assert leased.status_code == 200
    ids = {item["problem_id"] for item in leased.json()["items"]}
    for client in (pair.fast, pair.route):
        skipping = client.post(BATCHES, json={"size": 40, "seed": 6, "skip_leased": True})
        assert skipping.status_code == 200
        assert not ids & {item["problem_id"] for item in skipping.json()["items"]}
    # With skip_leased false (the plain request) the leased problems are drawn as ever.
    plain = pair.fast.post(BATCHES, json={"size": 40, "seed": 6})
    assert ids <= {item["problem_id"] for item in plain.json()["items"]}


def prompts_served(client: TestClient, body: dict) -> dict[str, str]:
    response = client.post(BATCHES, json=body)
    assert response.status_code == 200, response.text
    return {item["problem_id"]: item["prompt"] for item in response.json()["items"]}


def test_an_overwritten_problem_is_served_with_its_new_text(database_url):
    interval = 0.3
    with (
        make_service(database_url, True, interval) as writer,
        make_service(database_url, True, interval) as reader,
    ):
        ids = make_dataset(writer, n=30)
        assert writer.post("/v1/runs", json={"name": "run1", "dataset": "math"}).is_success
        outcomes = [{"problem_id": p, "attempts": 4, "successes": 2} for p in ids]
        assert post_outcomes(writer, "run1", outcomes).status_code == 200
        body = {"size": 30, "seed": 1}
        for client in (writer, reader):
            prompts_served(client, body)  # index built, texts cached
        passed = Passed(fast_path_of_started(reader).app)
        fast_path_of(reader).app = passed
        writer_passed = Passed(fast_path_of(writer).app)
        fast_path_of(writer).app = writer_passed
        assert prompts_served(reader, body) == {p: f"prompt {p}" for p in ids}
        changed = [{"id": p, "prompt": f"new {p}"} for p in ids[:10]]
        upsert = writer.post("/v1/datasets/math/problems", json={"problems": changed})
        assert upsert.json() == {"inserted": 0, "updated": 10}
        expected = {p: (f"new {p}" if i < 10 else f"prompt {p}") for i, p in enumerate(ids)}
        assert prompts_served(writer, body) == expected  # at once where it was written
        time.sleep(interval * 1.5)
        assert prompts_served(reader, body) == expected  # within the interval elsewhere
        assert passed.batches == 0 and writer_passed.batches == 0  # all by the fast path


def test_repeated_headers_are_read_as_the_route_reads_them(pair):
    body = {"size": 7, "seed": 13}
    for accept in ([("accept", "application/json"), ("accept", COLUMNS)],
                   [("accept", COLUMNS), ("accept", "application/json")]):  # fmt: skip
        fast, route, served = pair.both(json=body, headers=accept)
        assert fast.status_code == 200 and served
        same(fast, route)
    types = [("content-type", "application/json"), ("content-type", "text/plain")]
    fast, route, _ = pair.both(content=b'{"size": 7, "seed": 13}', headers=types)
    same(fast, route)
