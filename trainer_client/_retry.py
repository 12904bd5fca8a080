"""The client's retry policy, written once and free of I/O (both twins drive it).

`retry_flow` is the retry decision loop as a generator. It yields "sleep this long, then send
the request" and is sent back what happened (a response or an httpx transport error). The
sync twin drives it with time.sleep + Client.send, the async twin with anyio.sleep +
AsyncClient.send, so the policy itself is the same code and is unit-testable without I/O.

Retry rules (why they differ by call):
- SAFE calls (GETs, and POST queries that change nothing: weights, batches) may be repeated
  freely, so every transient failure is retried, 500 included.
- KEYED calls (POST outcomes) always carry an Idempotency-Key fixed when the Call is built, and
  the very same request (same key, same body) is re-sent on every retry: the server answers a
  replay with the first response and applies nothing twice. A 500 is not retried: it is most
  likely deterministic.
- UNSAFE calls (other POSTs) are retried only when the request provably never reached the
  server (connect errors, pool timeouts) or the server said so itself (429, 503).
"""

from __future__ import annotations

import email.utils
import enum
import logging
import random
import time
from collections.abc import Generator
from dataclasses import dataclass

import httpx

from .errors import PacedConnectionError, PacedError, error_from_response

logger = logging.getLogger("trainer_client")

DEFAULT_MAX_RETRIES = 5


class RetryMode(enum.Enum):
    SAFE = "safe"
    KEYED = "keyed"
    UNSAFE = "unsafe"


_RETRY_STATUSES: dict[RetryMode, frozenset[int]] = {
    RetryMode.SAFE: frozenset({429, 500, 502, 503, 504}),
    RetryMode.KEYED: frozenset({429, 502, 503, 504}),
    RetryMode.UNSAFE: frozenset({429, 503}),
}

# Transient network failures. UnsupportedProtocol / LocalProtocolError are caller bugs: never
# retried. For UNSAFE calls only failures before the request was written qualify.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
_RETRY_EXCEPTIONS: dict[RetryMode, tuple[type[Exception], ...]] = {
    RetryMode.SAFE: _TRANSIENT,
    RetryMode.KEYED: _TRANSIENT,
    RetryMode.UNSAFE: _NOT_SENT,
}


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with "equal jitter", capped; Retry-After overrides it.

    Retry n (0-based) waits uniform(d/2, d) with d = min(cap, base * 2**n): never zero (so
    retries do not hammer a struggling server) yet spread out (so clients do not retry in
    lockstep). A server's Retry-After is honoured, up to max_retry_after seconds.
    """

    base: float = 0.25
    cap: float = 8.0
    max_retry_after: float = 60.0

    def delay(
        self, retry_index: int, rng: random.Random, retry_after: float | None = None
    ) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        ceiling = min(self.cap, self.base * 2.0**retry_index)
        return rng.uniform(ceiling / 2.0, ceiling)


def parse_retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent/invalid."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


# ---- the retry loop ----------------------------------------------------------------------------

Outcome = httpx.Response | Exception


def retry_flow(
    request: httpx.Request,
    mode: RetryMode,
    max_retries: int,
    backoff: Backoff,
    rng: random.Random,
) -> Generator[float, Outcome, httpx.Response]:
    """Yield the delay before each attempt; receive its outcome; return the success response.

    Raises the PacedError for the last outcome once it is not retryable or retries are spent.
    The caller re-sends the same `request` object, so headers (Idempotency-Key) and body are
    byte-identical on every attempt.
    """
    retries = 0
    outcome = yield 0.0
    while True:
        if isinstance(outcome, httpx.Response):
            if outcome.is_success:
                return outcome
            retryable = outcome.status_code in _RETRY_STATUSES[mode]
            hint = parse_retry_after(outcome)
            what = str(outcome.status_code)
        else:
            retryable = isinstance(outcome, _RETRY_EXCEPTIONS[mode])
            hint = None
            what = type(outcome).__name__
        if not retryable or retries >= max_retries:
            raise _final_error(request, outcome)
        delay = backoff.delay(retries, rng, hint)
        retries += 1
        logger.warning(
            "%s %s failed (%s); retry %d/%d in %.2fs",
            request.method,
            request.url,
            what,
            retries,
            max_retries,
            delay,
        )
        outcome = yield delay


def _final_error(request: httpx.Request, outcome: Outcome) -> PacedError:
    if isinstance(outcome, httpx.Response):
        return error_from_response(outcome)
    error = PacedConnectionError(
        None, f"{type(outcome).__name__}: {outcome}", request.method, str(request.url)
    )
    error.__cause__ = outcome
    return error
