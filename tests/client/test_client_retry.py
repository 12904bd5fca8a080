"""Retry, backoff and idempotency-key behaviour of PacedClient / AsyncPacedClient.

The network is the true external boundary of the client, so it is replaced by
httpx.MockTransport; the retry policy, backoff and request building run for real.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import uuid

import httpx
import pytest

import trainer_client.async_client as async_module
import trainer_client.client as sync_module
from tests.client.client_fakes import NO_WAIT, fail, ok, scripted
from trainer_client._retry import Backoff, RetryMode, parse_retry_after, retry_flow
from trainer_client.async_client import AsyncPacedClient
from trainer_client.client import PacedClient
from trainer_client.errors import PacedConnectionError, PacedError, ServiceUnavailable

OUTCOMES = [{"problem_id": "p1", "attempts": 8, "successes": 3}]
RUN = {"name": "r1", "dataset": "ds"}


def client_for(recorder, **kwargs) -> PacedClient:
    kwargs.setdefault("backoff", NO_WAIT)
    return PacedClient("http://paced.test", transport=recorder.transport(), **kwargs)


def keys_of(recorder) -> list[str | None]:
    return [r.headers.get("Idempotency-Key") for r in recorder.requests]


# ---- outcomes: the same key (and body) on every retry -------------------------------------------


def test_outcome_retries_reuse_one_idempotency_key_and_identical_body():
    recorder = scripted(
        httpx.ConnectError("refused"),
        fail(503),
        httpx.ReadTimeout("slow"),  # may have reached the server: only safe because of the key
        ok({"accepted": 1}),
    )
    with client_for(recorder) as paced:
        result = paced.post_outcomes("r1", OUTCOMES)
    assert result.accepted == 1
    keys = keys_of(recorder)
    assert len(keys) == 4 and len(set(keys)) == 1
    uuid.UUID(keys[0])  # a generated key is a uuid
    assert len({r.content for r in recorder.requests}) == 1


def test_caller_idempotency_key_is_sent_as_given_on_every_attempt():
    recorder = scripted(fail(502), ok({"accepted": 1}))
    with client_for(recorder) as paced:
        paced.post_outcomes("r1", OUTCOMES, idempotency_key="step-17")
    assert keys_of(recorder) == ["step-17", "step-17"]


def test_separate_outcome_posts_get_different_generated_keys():
    recorder = scripted(ok({"accepted": 1}), ok({"accepted": 1}))
    with client_for(recorder) as paced:
        paced.post_outcomes("r1", OUTCOMES)
        paced.post_outcomes("r1", OUTCOMES)
    first, second = keys_of(recorder)
    assert first != second


def test_outcome_post_is_not_retried_on_500():
    recorder = scripted(fail(500, "bug"), ok({"accepted": 1}))
    with client_for(recorder) as paced, pytest.raises(PacedError) as caught:
        paced.post_outcomes("r1", OUTCOMES)
    assert caught.value.status_code == 500
    assert len(recorder.requests) == 1


def test_async_twin_reuses_the_key_across_retries():
    recorder = scripted(httpx.ConnectError("refused"), fail(503), ok({"accepted": 1}))

    async def main():
        async with AsyncPacedClient(
            "http://paced.test", transport=recorder.transport(), backoff=NO_WAIT
        ) as paced:
            return await paced.post_outcomes("r1", OUTCOMES)

    assert asyncio.run(main()).accepted == 1
    keys = keys_of(recorder)
    assert len(keys) == 3 and len(set(keys)) == 1 and keys[0] is not None


# ---- which calls retry on what ----------------------------------------------------------------


def test_get_is_retried_on_500_and_read_timeouts():
    recorder = scripted(fail(500), httpx.ReadTimeout("slow"), ok({"status": "ok"}))
    with client_for(recorder) as paced:
        assert paced.health().status == "ok"
    assert len(recorder.requests) == 3


@pytest.mark.parametrize("first", [httpx.ConnectError("refused"), fail(503), fail(429)])
def test_create_run_retries_when_the_request_provably_was_not_processed(first):
    recorder = scripted(first, ok(RUN, status=201))
    with client_for(recorder) as paced:
        assert paced.create_run("r1", "ds").name == "r1"
    assert len(recorder.requests) == 2
    # Non-outcome POSTs never carry an idempotency key.
    assert keys_of(recorder) == [None, None]


@pytest.mark.parametrize(
    "first", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("dropped"), fail(502)]
)
def test_create_run_is_not_retried_when_it_may_have_been_applied(first):
    recorder = scripted(first, ok(RUN, status=201))
    with client_for(recorder) as paced, pytest.raises(PacedError):
        paced.create_run("r1", "ds")
    assert len(recorder.requests) == 1


def test_retries_stop_after_max_retries_with_service_unavailable():
    recorder = scripted(*[fail(503, "draining")] * 3)
    with client_for(recorder, max_retries=2) as paced, pytest.raises(ServiceUnavailable) as caught:
        paced.get_run("r1")
    assert len(recorder.requests) == 3
    assert caught.value.status_code == 503 and caught.value.detail == "draining"


def test_connection_failure_after_retries_is_a_chained_connection_error():
    recorder = scripted(*[httpx.ConnectError("refused")] * 2)
    with client_for(recorder, max_retries=1) as paced:
        with pytest.raises(PacedConnectionError) as caught:
            paced.list_runs()
    assert isinstance(caught.value, ServiceUnavailable)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.status_code is None and "refused" in str(caught.value)


# ---- backoff and Retry-After --------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    backoff = Backoff(base=0.5, cap=4.0)
    rng = random.Random(0)
    for retry_index, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        draws = [backoff.delay(retry_index, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
        assert len(set(draws)) > 1  # jittered, not a fixed schedule


def test_retry_flow_yields_the_backoff_delays_and_returns_the_success():
    request = httpx.Request("GET", "http://paced.test/healthz")
    flow = retry_flow(request, RetryMode.SAFE, 5, Backoff(base=1.0, cap=3.0), random.Random(1))
    assert next(flow) == 0.0  # the first attempt goes out at once
    delays = [flow.send(httpx.Response(503, request=request)) for _ in range(3)]
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and 1.5 <= delays[2] <= 3.0
    with pytest.raises(StopIteration) as done:
        flow.send(httpx.Response(200, json={"status": "ok"}, request=request))
    assert done.value.value.status_code == 200


def test_retry_after_seconds_override_backoff(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(sync_module, "_sleep", slept.append)
    recorder = scripted(fail(429, headers={"Retry-After": "2"}), ok({"items": []}))
    with client_for(recorder, backoff=Backoff(base=0.01, cap=0.01)) as paced:
        assert paced.list_datasets() == []
    assert slept == [2.0]


def test_retry_after_is_capped():
    backoff = Backoff(max_retry_after=5.0)
    assert backoff.delay(0, random.Random(), retry_after=3600.0) == 5.0


def test_retry_after_http_date_is_parsed():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    seconds = parse_retry_after(httpx.Response(503, headers={"Retry-After": when}))
    assert seconds is not None and 25 <= seconds <= 31
    assert parse_retry_after(httpx.Response(503, headers={"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Response(503)) is None


def test_async_twin_sleeps_the_backoff_it_is_given(monkeypatch):
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(async_module, "_sleep", fake_sleep)
    recorder = scripted(fail(503), fail(503), ok({"status": "ok"}))

    async def main():
        async with AsyncPacedClient(
            "http://paced.test", transport=recorder.transport(), backoff=Backoff(base=1, cap=1)
        ) as paced:
            return await paced.health()

    assert asyncio.run(main()).status == "ok"
    assert len(slept) == 2 and all(0.5 <= s <= 1.0 for s in slept)
