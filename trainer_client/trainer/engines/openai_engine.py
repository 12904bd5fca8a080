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
Requests run concurrently (at most ``max_concurrency`` in flight) on one httpx.AsyncClient.
Retries follow the client's one policy (trainer_client/_retry.py, driven here as the async
twin drives it): a completion request is UNSAFE there (it costs the server a generation), so
429 and 503 are retried with capped, jittered exponential backoff and Retry-After is
honoured. An unreachable server fails at once, naming the URL: rollouts cannot go on
without it.

Weight sync: a server runs in another process, often on another machine, so
``load_weights`` needs a ``weight_sync`` (server_sync.VLLMServerSync for a stock vLLM
server). Without one, load_weights raises instead of letting the server sample from stale
weights.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

import httpx

from trainer_client._retry import Backoff, RetryMode, retry_flow
from trainer_client.errors import PacedError
from trainer_client.trainer.engines.base import Completion, Engine, Sampling, checked_sampling
from trainer_client.trainer.engines.sampling import (
    neutral_sampling,
    repeat_to_k,
    samples_per_request,
    spaced_seeds,
)


class RolloutServerError(RuntimeError):
    """The rollout server could not be reached or refused a request."""


class ModelNotServed(RolloutServerError):
    """The server does not serve the requested model name."""


class ContextTooLong(RolloutServerError, ValueError):
    """Prompt plus max_new_tokens exceed the served model's context length."""


def completions_of(payload: dict[str, Any], k: int) -> list[Completion]:
    choices: Sequence[dict[str, Any]] = sorted(
        payload.get("choices", []), key=lambda choice: choice.get("index", 0)
    )
    if len(choices) != k:
        raise RolloutServerError(f"expected {k} choices, the server returned {len(choices)}")
    return [
        Completion(text=choice.get("text") or "", token_ids=list(choice.get("token_ids") or []))
        for choice in choices
    ]


def error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    error = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)
    return str(error)


class OpenAIEngine(Engine):
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
        self.backoff = Backoff(base=backoff_s, cap=max_backoff_s)
        self._rng = random.Random()  # the backoff's jitter: retries do not arrive in step
        self.timeout_s = timeout_s
        self.weight_sync = weight_sync
        self.vllm_extensions = vllm_extensions
        self._transport = transport  # tests inject failures here
        self.retries = 0  # retried requests so far (429/503)

    # -- generation ------------------------------------------------------------------------

    def sample(self, prompts: list[str], sampling: Sampling) -> list[list[Completion]]:
        """The synchronous twin of ``agenerate`` (for the training loop); inside a running
        event loop, await ``agenerate`` instead."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._sample(prompts, sampling))
        raise RuntimeError("OpenAIEngine.generate called inside an event loop: await agenerate")

    async def agenerate(self, prompts: list[str], k: int, **options: Any) -> list[list[Completion]]:
        """``generate`` for a running event loop (the same arguments: seed, max_new_tokens,
        temperature, top_p)."""
        sampling = checked_sampling(prompts, k, options)
        return await self._sample(prompts, sampling) if prompts else []

    async def _sample(self, prompts: list[str], sampling: Sampling) -> list[list[Completion]]:
        k = sampling.k
        seeds = spaced_seeds(sampling.seed, len(prompts), k)
        bodies = [
            self._body(prompt, seed, sampling) for prompt, seed in zip(prompts, seeds, strict=True)
        ]
        limit = asyncio.Semaphore(self.max_concurrency)
        async with self._client() as client:

            async def one(index: int, body: dict[str, Any]) -> list[Completion]:
                async with limit:
                    return await self._complete(client, index, body, k)

            return list(await asyncio.gather(*(one(i, b) for i, b in enumerate(bodies))))

    def _body(self, prompt: str, seed: int, sampling: Sampling) -> dict[str, Any]:
        temperature, top_p = sampling.temperature, sampling.top_p
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "n": samples_per_request(sampling.k, temperature),
            "max_tokens": sampling.max_new_tokens,
            "seed": seed,
            "temperature": temperature,
            "top_p": top_p,
            "stream": False,
        }
        if self.vllm_extensions:
            neutral = neutral_sampling(temperature, top_p)
            body.update({key: value for key, value in neutral.items() if key not in body})
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
        request = client.build_request("POST", "/v1/completions", json=body)
        flow = retry_flow(request, RetryMode.UNSAFE, self.max_retries, self.backoff, self._rng)
        delay, retried = next(flow), False
        while True:
            if delay:
                await asyncio.sleep(delay)
            try:
                response = await client.send(request)
            except httpx.TransportError as error:
                raise RolloutServerError(
                    f"cannot reach the rollout server at {self.base_url} ({error!r}): "
                    "is it running, and is --base-url right?"
                ) from error
            try:
                delay = flow.send(response)
            except StopIteration:  # a success
                return repeat_to_k(completions_of(response.json(), body["n"]), k)
            except PacedError:  # not retried, or the retries are spent
                raise await self._request_error(client, response, index, body, retried) from None
            self.retries += 1
            retried = True

    async def _request_error(
        self,
        client: httpx.AsyncClient,
        response: httpx.Response,
        index: int,
        body: dict[str, Any],
        retried: bool,
    ) -> RolloutServerError:
        message = error_message(response)
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
        after = " after retries" if retried else ""
        return RolloutServerError(
            f"the rollout server answered {response.status_code}{after} for prompt {index}: "
            f"{message}"
        )

    async def _served_models(self, client: httpx.AsyncClient) -> list[str]:
        try:
            found = await client.get("/v1/models")
            return [entry["id"] for entry in found.json().get("data", [])]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return []

    # -- weight sync -----------------------------------------------------------------------

    def load_weights(self, model_or_state_dict: Any) -> None:
        if self.weight_sync is None:
            raise RuntimeError(
                "OpenAIEngine has no weight_sync: the server would keep sampling from its old "
                "weights. Pass weight_sync=VLLMServerSync(...) (stock vLLM with "
                "VLLM_SERVER_DEV_MODE=1), or sync the server yourself."
            )
        self.weight_sync.sync(model_or_state_dict)
