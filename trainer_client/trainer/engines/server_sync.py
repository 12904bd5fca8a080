"""Push student weights into a running vLLM server (the OpenAIEngine's weight sync).

Works with a stock vLLM server started with ``VLLM_SERVER_DEV_MODE=1``: the student's
weights are written (in the layout of vllm_checkpoint.py) into a directory the server can
read, then the dev endpoints ``/pause?mode=wait``, ``/collective_rpc`` (``reload_weights``
with ``weights_path``), ``/reset_prefix_cache`` and ``/resume`` are called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from trainer_client.trainer.engines.openai_engine import RolloutServerError, error_message


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
                f"{error_message(response)}"
            )
