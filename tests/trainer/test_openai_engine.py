"""OpenAIEngine's HTTP behaviour against scripted responses (the server is the external
boundary; the real vLLM server is exercised in tests/vllm/test_openai_server.py)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from trainer_client.trainer.engines import Completion, RolloutEngine
from trainer_client.trainer.engines.openai_engine import (
    ContextTooLong,
    ModelNotServed,
    OpenAIEngine,
    RolloutServerError,
)
from trainer_client.trainer.engines.server_sync import VLLMServerSync


def completion_response(body: dict) -> httpx.Response:
    choices = [
        {
            "index": j,
            "text": f"{body['prompt']}|{body['seed'] + j}",
            "token_ids": [body["seed"] + j],
        }
        for j in reversed(range(body["n"]))  # out of order: the engine sorts by index
    ]
    return httpx.Response(200, json={"choices": choices})


class Script:
    """A transport that answers from a list of status codes, then with completions."""

    def __init__(self, statuses=(), retry_after=None):
        self.statuses = list(statuses)
        self.retry_after = retry_after
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "served-a"}, {"id": "served-b"}]})
        body = json.loads(request.content)
        self.bodies.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if self.statuses:
                status = self.statuses.pop(0)
                headers = {"retry-after": self.retry_after} if self.retry_after else {}
                return httpx.Response(status, json={"error": {"message": "busy"}}, headers=headers)
            return completion_response(body)
        finally:
            self.in_flight -= 1

    def engine(self, **kwargs) -> OpenAIEngine:
        kwargs.setdefault("backoff_s", 0.001)
        return OpenAIEngine(
            "http://rollouts.test/v1", "m", transport=httpx.MockTransport(self.handle), **kwargs
        )


def test_one_request_per_prompt_with_spaced_seeds_and_neutral_sampling():
    script = Script()
    engine = script.engine()
    assert isinstance(engine, RolloutEngine)
    out = engine.generate(["a", "b", "c"], 4, seed=10, max_new_tokens=7, top_p=0.9)
    by_prompt = {body["prompt"]: body for body in script.bodies}
    assert [by_prompt[p]["seed"] for p in "abc"] == [10, 14, 18]
    body = by_prompt["b"]
    assert body["n"] == 4 and body["max_tokens"] == 7 and body["model"] == "m"
    assert body["top_p"] == 0.9 and body["temperature"] == 1.0
    assert body["top_k"] == 0 and body["repetition_penalty"] == 1.0
    assert body["return_token_ids"] is True
    assert out[1][2] == Completion(text="b|16", token_ids=[16])  # sorted by choice index
    assert [len(group) for group in out] == [4, 4, 4]
    assert engine.generate([], 4, seed=0, max_new_tokens=1) == []


def test_greedy_requests_one_sample_and_repeats_it():
    script = Script()
    out = script.engine().generate(["a"], 3, seed=0, max_new_tokens=2, temperature=0)
    assert script.bodies[0]["n"] == 1
    assert out == [[Completion("a|0", [0])] * 3]


def test_standard_fields_only_without_vllm_extensions():
    script = Script()
    script.engine(vllm_extensions=False).generate(["a"], 2, seed=0, max_new_tokens=2)
    assert set(script.bodies[0]) == {
        "model",
        "prompt",
        "n",
        "max_tokens",
        "seed",
        "temperature",
        "top_p",
        "stream",
    }


def test_concurrency_is_bounded():
    script = Script()
    script.engine(max_concurrency=3).generate(
        [str(i) for i in range(12)], 1, seed=0, max_new_tokens=1
    )
    assert len(script.bodies) == 12
    assert script.max_in_flight == 3


def test_429_and_503_are_retried_then_succeed():
    script = Script(statuses=[429, 503, 429])
    engine = script.engine()
    out = engine.generate(["a"], 2, seed=5, max_new_tokens=3)
    assert out == [[Completion("a|5", [5]), Completion("a|6", [6])]]
    assert engine.retries == 3 and len(script.bodies) == 4


def test_retry_after_header_is_honoured():
    script = Script(statuses=[503], retry_after="0.2")
    engine = script.engine(backoff_s=10.0)  # would be 10 s without the header
    started = time.monotonic()
    engine.generate(["a"], 1, seed=0, max_new_tokens=1)
    waited = time.monotonic() - started
    assert 0.2 <= waited < 5


def test_gives_up_after_max_retries_with_the_status():
    script = Script(statuses=[503] * 10)
    with pytest.raises(RolloutServerError, match="503 after retries") as info:
        script.engine(max_retries=2).generate(["a"], 1, seed=0, max_new_tokens=1)
    assert len(script.bodies) == 3
    assert not isinstance(info.value, ContextTooLong)


def test_wrong_model_name_lists_the_served_models():
    async def handle(request):
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": "student"}]})
        message = "The model `m` does not exist."
        return httpx.Response(404, json={"error": {"message": message}})

    engine = OpenAIEngine("http://x", "m", transport=httpx.MockTransport(handle))
    with pytest.raises(
        ModelNotServed, match=r"does not serve model 'm' \(it serves \['student'\]\)"
    ):
        engine.generate(["a"], 1, seed=0, max_new_tokens=1)


def test_context_too_long_names_the_prompt_and_budget():
    async def handle(request):
        message = "This model's maximum context length is 128 tokens. However, you requested 300"
        return httpx.Response(400, json={"error": {"message": message}})

    engine = OpenAIEngine("http://x", "m", transport=httpx.MockTransport(handle))
    with pytest.raises(ContextTooLong, match="prompt 0 with max_new_tokens=200"):
        engine.generate(["a"], 1, seed=0, max_new_tokens=200)


def test_server_down_is_a_clear_error():
    from service.spawn import free_port

    engine = OpenAIEngine(f"http://127.0.0.1:{free_port()}", "m")
    with pytest.raises(RolloutServerError, match="cannot reach the rollout server"):
        engine.generate(["a"], 1, seed=0, max_new_tokens=1)


def test_load_weights_without_a_weight_sync_refuses():
    with pytest.raises(RuntimeError, match="no weight_sync"):
        OpenAIEngine("http://x", "m").load_weights({})


def test_generate_inside_an_event_loop_points_to_agenerate():
    async def inside():
        engine = Script().engine()
        with pytest.raises(RuntimeError, match="await agenerate"):
            engine.generate(["a"], 1, seed=0, max_new_tokens=1)
        return await engine.agenerate(["a"], 1, seed=0, max_new_tokens=1)

    assert asyncio.run(inside()) == [[Completion("a|0", [0])]]


def test_server_sync_without_dev_mode_says_how_to_enable_it(tmp_path, monkeypatch):
    import trainer_client.trainer.engines.server_sync as module
    from trainer_client.trainer.engines.vllm_checkpoint import ExportPlan

    def handle(request):
        return httpx.Response(404, json={"detail": "Not Found"})

    real_client = httpx.Client
    monkeypatch.setattr(
        module.httpx,
        "Client",
        lambda **kw: real_client(transport=httpx.MockTransport(handle), **kw),
    )
    torch = pytest.importorskip("torch")
    plan = ExportPlan("llama", 64, 1, 1, pad_factor=1, tied=False)
    sync = VLLMServerSync("http://x", tmp_path / "sync", plan=plan)
    with pytest.raises(RolloutServerError, match="VLLM_SERVER_DEV_MODE=1"):
        sync.sync({"model.norm.weight": torch.ones(4)})
    assert (tmp_path / "sync" / "model.safetensors").exists()
