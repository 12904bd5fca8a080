"""Rollouts from any OpenAI-compatible ``/v1/completions`` server (vLLM, SGLang, trl vllm-serve).

How requests are built (checked against vLLM 0.32's server):
- one request per prompt with ``n=k`` and seed ``base + i*k``: all prompts of one request
  share one seed stream in vLLM, and child j of a request gets seed + j, so spacing by k
  keeps every completion's stream distinct (the same rule as the in-process engine);
- the sampling fields are all set (top_k=0, min_p=0, penalties neutral), so the served
  checkpoint's generation_config defaults never change the distribution; with
  ``vllm_extensions=False`` only standard OpenAI fields are sent;
- ``return_token_ids: true`` asks vLLM for the generated token ids; servers that ignore it
  give completions with empty ``token_ids``.
Requests run concurrently (at most ``max_concurrency`` in flight) on one httpx.AsyncClient;
429 and 503 answers are retried with exponential backoff (Retry-After is honoured).

Weight sync: a server runs in another process, often on another machine, so
``load_weights`` needs a ``weight_sync``. ``VLLMServerSync`` works with a stock vLLM
server started with ``VLLM_SERVER_DEV_MODE=1``: it writes the student's weights (in the
layout of vllm_checkpoint.py) into a directory the server can read, then calls the dev
endpoints ``/pause?mode=wait``, ``/collective_rpc`` (``reload_weights`` with
``weights_path``), ``/reset_prefix_cache`` and ``/resume``. Without a weight_sync,
load_weights raises instead of letting the server sample from stale weights.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from trainer_client.trainer.engines.base import Completion, validate_generate_args
from trainer_client.trainer.engines.sampling import (
    neutral_sampling,
    repeat_to_k,
    samples_per_request,
    spaced_seeds,
)

RETRY_STATUSES = frozenset({429, 503})


class RolloutServerError(RuntimeError):
    """The rollout server could not be reached or refused a request."""


class ModelNotServed(RolloutServerError):
    """The server does not serve the requested model name."""


class ContextTooLong(RolloutServerError, ValueError):
    """Prompt plus max_new_tokens exceed the served model's context length."""


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)
    return str(error)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class OpenAIEngine:
    """``RolloutEngine`` over an OpenAI-compatible completions endpoint.

    ``base_url`` is the server root (``http://host:8000``; a trailing ``/v1`` is accepted),
    ``model`` the served model name.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 16,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        timeout_s: float = 600.0,
        weight_sync: Any | None = None,
        vllm_extensions: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.weight_sync = weight_sync
        self.vllm_extensions = vllm_extensions
        self._transport = transport  # tests inject failures here
        self.retries = 0  # retried requests so far (429/503)

    # -- generation ------------------------------------------------------------------------

    def generate(
        self,
        prompts: list[str],
        k: int,
        *,
        seed: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> list[list[Completion]]:
        """Synchronous twin of ``agenerate`` (for the training loop); inside a running
        event loop, await ``agenerate`` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                self.agenerate(
                    prompts,
                    k,
                    seed=seed,
                    max_new_tokens=max_new_tokens,
                    temperature=temperature,
                    top_p=top_p,
                )
            )
        raise RuntimeError("OpenAIEngine.generate called inside an event loop: await agenerate")

    async def agenerate(
        self,
        prompts: list[str],
        k: int,
        *,
        seed: int,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
    ) -> list[list[Completion]]:
        validate_generate_args(prompts, k, max_new_tokens, temperature, top_p)
        if not prompts:
            return []
        bodies = [
            self._body(prompt, k, prompt_seed, max_new_tokens, temperature, top_p)
            for prompt, prompt_seed in zip(
                prompts, spaced_seeds(seed, len(prompts), k), strict=True
            )
        ]
        limit = asyncio.Semaphore(self.max_concurrency)
        async with self._client() as client:

            async def one(index: int, body: dict[str, Any]) -> list[Completion]:
                async with limit:
                    return await self._complete(client, index, body, k)

            return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))

    def _body(
        self, prompt: str, k: int, seed: int, max_new_tokens: int, temperature: float, top_p: float
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "n": samples_per_request(k, temperature),
            "max_tokens": max_new_tokens,
            "seed": seed,
            "temperature": temperature,
            "top_p": top_p,
            "stream": False,
        }
        if self.vllm_extensions:
            sampling = neutral_sampling(temperature, top_p)
            body.update({key: value for key, value in sampling.items() if key not in body})
            body["return_token_ids"] = True
            body["skip_special_tokens"] = True
        return body

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.max_concurrency)
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers=self.headers,
            timeout=self.timeout_s,
            limits=limits,
            transport=self._transport,
        )

    async def _complete(
        self, client: httpx.AsyncClient, index: int, body: dict[str, Any], k: int
    ) -> list[Completion]:
        for attempt in range(self.max_retries + 1):
            try:
                response = await client.post("/v1/completions", json=body)
            except httpx.TransportError as error:
                raise RolloutServerError(
                    f"cannot reach the rollout server at {self.base_url} ({error!r}): "
                    "is it running, and is --base-url right?"
                ) from error
            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                self.retries += 1
                delay = _retry_after(response)
                if delay is None:
                    delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
                    delay *= 1 + 0.25 * random.random()  # jitter: retries do not arrive in step
                await asyncio.sleep(delay)
                continue
            if response.status_code != 200:
                raise await self._request_error(client, response, index, body)
            completions = self._completions(response.json(), body["n"])
            return repeat_to_k(completions, k)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _request_error(
        self, client: httpx.AsyncClient, response: httpx.Response, index: int, body: dict[str, Any]
    ) -> RolloutServerError:
        message = _error_message(response)
        lowered = message.lower()
        if response.status_code == 404 and "model" in lowered:
            served = await self._served_models(client)
            return ModelNotServed(
                f"the server at {self.base_url} does not serve model {self.model!r} "
                f"(it serves {served}): {message}"
            )
        if response.status_code == 400 and (
            "context length" in lowered or "max_model_len" in lowered or "too long" in lowered
        ):
            return ContextTooLong(
                f"prompt {index} with max_new_tokens={body['max_tokens']} does not fit the "
                f"served model's context: {message}"
            )
        retried = " after retries" if response.status_code in RETRY_STATUSES else ""
        return RolloutServerError(
            f"the rollout server answered {response.status_code}{retried} for prompt {index}: "
            f"{message}"
        )

    async def _served_models(self, client: httpx.AsyncClient) -> list[str]:
        try:
            found = await client.get("/v1/models")
            return [entry["id"] for entry in found.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return []

    @staticmethod
    def _completions(payload: dict[str, Any], k: int) -> list[Completion]:
        choices: Sequence[dict[str, Any]] = sorted(
            payload.get("choices", []), key=lambda choice: choice.get("index", 0)
        )
        if len(choices) != k:
            raise RolloutServerError(f"expected {k} choices, the server returned {len(choices)}")
        return [
            Completion(text=choice.get("text") or "", token_ids=list(choice.get("token_ids") or []))
            for choice in choices
        ]

    # -- weight sync -----------------------------------------------------------------------

    def load_weights(self, model_or_state_dict: Any) -> None:
        if self.weight_sync is None:
            raise RuntimeError(
                "OpenAIEngine has no weight_sync: the server would keep sampling from its old "
                "weights. Pass weight_sync=VLLMServerSync(...) (stock vLLM with "
                "VLLM_SERVER_DEV_MODE=1), or sync the server yourself."
            )
        self.weight_sync.sync(model_or_state_dict)


class VLLMServerSync:
    """Push student weights into a running vLLM server through a shared directory.

    ``sync_dir`` must be readable by the server at the same path (same machine or a shared
    filesystem). ``plan`` maps the student's weights to the served checkpoint's layout
    (vllm_checkpoint.ExportPlan); by default it is derived from the synced module's config.
    """

    def __init__(
        self,
        base_url: str,
        sync_dir: str | Path,
        *,
        plan: Any | None = None,
        api_key: str | None = None,
        timeout_s: float = 600.0,
    ) -> None:
        self.base_url = base_url.rstrip("/").removesuffix("/v1")
        self.sync_dir = Path(sync_dir).resolve()
        self.plan = plan
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout_s = timeout_s
        self.syncs = 0

    def sync(self, model_or_state_dict: Any) -> None:
        from trainer_client.trainer.engines.vllm_checkpoint import ExportPlan, write_weights

        plan = self.plan
        if plan is None:
            config = getattr(model_or_state_dict, "config", None)
            if config is None:
                raise ValueError("syncing a state dict needs VLLMServerSync(plan=...)")
            plan = ExportPlan.for_config(config)
        write_weights(model_or_state_dict, plan, self.sync_dir)
        with httpx.Client(
            base_url=self.base_url, headers=self.headers, timeout=self.timeout_s
        ) as c:
            # Wait for in-flight requests, so no completion mixes old and new weights.
            self._post(c, "/pause", params={"mode": "wait"})
            try:
                self._post(
                    c,
                    "/collective_rpc",
                    json={
                        "method": "reload_weights",
                        "kwargs": {"weights_path": str(self.sync_dir)},
                    },
                )
                self._post(c, "/reset_prefix_cache")
            finally:
                self._post(c, "/resume")
        self.syncs += 1

    def _post(self, client: httpx.Client, path: str, **kwargs: Any) -> None:
        try:
            response = client.post(path, **kwargs)
        except httpx.TransportError as error:
            raise RolloutServerError(
                f"cannot reach the rollout server at {self.base_url} to sync weights ({error!r})"
            ) from error
        if response.status_code == 404:
            raise RolloutServerError(
                f"{self.base_url}{path} does not exist: start vLLM with VLLM_SERVER_DEV_MODE=1 "
                "(it enables the /pause, /collective_rpc and /reset_prefix_cache endpoints)"
            )
        if response.status_code != 200:
            raise RolloutServerError(
                f"weight sync step {path} failed with {response.status_code}: "
                f"{_error_message(response)}"
            )
