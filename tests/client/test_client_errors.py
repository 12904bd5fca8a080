"""Error responses become typed PacedError subclasses.

The network is the true external boundary of the client, so it is replaced by
httpx.MockTransport; error mapping and message formatting run for real.
"""

from __future__ import annotations

import httpx
import pytest

from tests.client.client_fakes import NO_WAIT, fail, scripted
from trainer_client.client import PacedClient
from trainer_client.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PacedError,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)


def client_for(recorder) -> PacedClient:
    # No retries: each test sees the first response's error.
    return PacedClient(
        "http://paced.test", transport=recorder.transport(), max_retries=0, backoff=NO_WAIT
    )


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, PacedError),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (422, ValidationFailed),
        (429, RateLimited),
        (500, PacedError),
        (502, ServiceUnavailable),
        (503, ServiceUnavailable),
        (504, ServiceUnavailable),
    ],
)
def test_status_codes_map_to_error_types(status, error_type):
    recorder = scripted(fail(status, f"detail for {status}"))
    with client_for(recorder) as paced, pytest.raises(PacedError) as caught:
        paced.get_run("r1")
    error = caught.value
    assert type(error) is error_type
    assert error.status_code == status
    assert error.detail == f"detail for {status}"
    assert error.method == "GET" and error.url == "http://paced.test/v1/runs/r1"
    assert str(status) in str(error) and f"detail for {status}" in str(error)


def test_validation_detail_list_is_kept_and_formatted():
    detail = [
        {"loc": ["body", "outcomes", 0, "problem_id"], "msg": "unknown problem id", "type": "x"},
        {"loc": ["body", "outcomes", 3, "problem_id"], "msg": "unknown problem id", "type": "x"},
        {"loc": ["body", "outcomes"], "msg": "2 unknown", "type": "x", "items": ["nope", "gone"]},
    ]
    recorder = scripted(fail(422, detail))
    outcomes = [{"problem_id": "nope", "attempts": 1, "successes": 0}]
    with client_for(recorder) as paced, pytest.raises(ValidationFailed) as caught:
        paced.post_outcomes("r1", outcomes)
    assert caught.value.detail == detail
    assert "body.outcomes.0.problem_id: unknown problem id" in str(caught.value)
    assert "body.outcomes.3.problem_id" in str(caught.value)
    assert caught.value.offending_items == ["nope", "gone"]
    assert caught.value.method == "POST"


def test_non_json_error_body_from_a_proxy_becomes_the_detail():
    recorder = scripted(httpx.Response(502, text="<html>Bad Gateway</html>"))
    with client_for(recorder) as paced, pytest.raises(ServiceUnavailable) as caught:
        paced.health()
    assert caught.value.detail == "<html>Bad Gateway</html>"


def test_conflict_message_from_an_empty_batch_reaches_the_caller():
    recorder = scripted(fail(409, "no eligible problems: all mastered or intractable"))
    with client_for(recorder) as paced, pytest.raises(Conflict, match="all mastered"):
        paced.batch("r1", size=8)


def test_success_with_a_non_json_body_is_an_error_not_a_crash():
    recorder = scripted(httpx.Response(200, text="OK"))
    with client_for(recorder) as paced, pytest.raises(PacedError, match="not JSON"):
        paced.health()
