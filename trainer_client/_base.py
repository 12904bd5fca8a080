"""What PacedClient and AsyncPacedClient share, as httpx's BaseClient is shared by its Client
and AsyncClient: the options, the httpx client's configuration (base URL, auth and default
headers set once on it), and turning a Call into a request and its retry flow. The twins add
only their I/O: send, sleep and close, blocking or awaited.
"""

from __future__ import annotations

import random
from collections.abc import Generator
from typing import Any, Generic, TypeVar

import httpx
import orjson

from ._endpoints import MAX_ITEMS_PER_REQUEST, Call
from ._retry import DEFAULT_MAX_RETRIES, Backoff, Outcome, retry_flow
from .limits import Limits

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# Connecting to a healthy service is quick; reads cover large batches and 10k-item ingests.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
USER_AGENT = "paced-trainer-client/1"

H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class BaseClient(Generic[H]):
    _http_class: type[H]

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        token: str | None = None,
        timeout: httpx.Timeout | float | None = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        backoff: Backoff | None = None,
        transport: Any = None,
        http_client: H | None = None,
        chunk_size: int = MAX_ITEMS_PER_REQUEST,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 1 <= chunk_size <= MAX_ITEMS_PER_REQUEST:
            raise ValueError(f"chunk_size must be in 1..{MAX_ITEMS_PER_REQUEST}")
        # A base URL may carry a prefix (a service behind a proxy at /paced).
        self.base_url = str(base_url).rstrip("/")
        self._max_retries = max_retries
        self._backoff = backoff or Backoff()
        self._chunk_size = chunk_size
        self._rng = random.Random()
        self._limits: Limits | None = None  # read on first use of limits()
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._owns_http = http_client is None
        if http_client is None:
            # Ours: base URL and headers are the httpx client's own; requests name paths only.
            self._http: H = self._http_class(
                base_url=self.base_url,
                headers={"User-Agent": USER_AGENT, **headers},
                timeout=timeout,
                transport=transport,
            )
            self._url_prefix, self._request_headers = "", {}
        else:
            # The caller's: its configuration is left as it is, so each request carries ours.
            self._http = http_client
            self._url_prefix, self._request_headers = self.base_url, headers

    @property
    def http_client(self) -> H:
        """The httpx client that sends every request: add event hooks to it to observe them."""
        return self._http

    def _prepare(self, call: Call[Any]) -> tuple[httpx.Request, Generator[float, Outcome, Any]]:
        """The request to send (the very same object on every retry) and its retry flow."""
        headers = {**self._request_headers, **call.headers}
        content = None
        if call.json is not None:
            # orjson: a 10,000-outcome body in a few ms instead of tens (json.dumps).
            content = orjson.dumps(call.json, option=orjson.OPT_NON_STR_KEYS)
            headers["Content-Type"] = "application/json"
        request = self._http.build_request(
            call.method,
            self._url_prefix + call.path,
            params=call.params,
            content=content,
            headers=headers,
        )
        flow = retry_flow(request, call.retry, self._max_retries, self._backoff, self._rng)
        return request, flow
