"""The prompt cache's budget is shared by every dataset: a second dataset's background
prefill stops where the whole cache reaches its share, not where that dataset alone does."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from service.app import create_app
from service.domain.prompt_cache import PREFILL_SHARE
from service.settings import Settings
from tests.service.helpers import make_dataset, make_run, post_outcomes

N = 2000


def settled(prompts, timeout_s: float = 20) -> int:
    """Bytes held once the background prefills stop growing the cache."""
    deadline, last = time.monotonic() + timeout_s, -1
    while time.monotonic() < deadline:
        held = prompts.nbytes
        if held == last:
            return held
        last = held
        time.sleep(0.3)
    return prompts.nbytes


def test_two_datasets_prefill_within_one_budget(database_url):
    budget_mb = 0.35  # one dataset (texts, ids, offsets) takes ~55 % of it, both ~110 %
    settings = Settings(database_url=database_url, sync_interval_s=60, prompt_cache_mb=budget_mb)
    app = create_app(settings)
    with TestClient(app) as client:
        prompts = client.app.state.ctx.prompts
        for name in ("one", "two"):
            make_dataset(client, name=name, n=N)
            make_run(client, name=f"run-{name}", dataset=name)
            outcomes = [{"problem_id": f"p{i}", "attempts": 4, "successes": 2} for i in range(9)]
            assert post_outcomes(client, f"run-{name}", outcomes).status_code == 200
        response = client.post("/v1/runs/run-one/batches", json={"size": 4, "seed": 1})
        assert response.status_code == 200
        alone = settled(prompts)
        assert len(prompts) == N  # the first dataset fits whole
        assert alone < PREFILL_SHARE * budget_mb * 2**20
        response = client.post("/v1/runs/run-two/batches", json={"size": 4, "seed": 1})
        assert response.status_code == 200
        both = settled(prompts)
        assert N < len(prompts) < 2 * N  # the second one got the rest of the share
        assert both <= budget_mb * 2**20
        # Draws from the second dataset still find every text, read or held.
        body = client.post("/v1/runs/run-two/batches", json={"size": 9, "seed": 2}).json()
        assert {item["prompt"] for item in body["items"]} == {f"prompt p{i}" for i in range(9)}
    app.state.ctx.engine.dispose()
