"""The batch endpoint as an I/O-free Call (re-exported by _endpoints): the request a trainer
sends every step, its exploration options, and how its answer is read in either format."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import httpx

from . import models
from ._batch_format import BATCH_COLUMNS, parse_batch
from ._call import Call, _seg, _without_none

FILL_POLICIES = ("none", "unseen", "unseen_then_uniform")
MODES = ("proportional", "uniform", "thompson")
BATCH_COLUMNS_ACCEPT = f"{BATCH_COLUMNS}, application/json;q=0.9"


def api_batch(
    run: str,
    size: int,
    seed: int | None,
    mode: str,
    fill: str | None = None,
    draw_key: str | None = None,
    lease: models.Lease | Mapping[str, Any] | None = None,
    skip_leased: bool | None = None,
    epsilon: float | None = None,
) -> Call[models.Batch]:
    """The batch request. mode "thompson": each problem weighed by w(p) at one draw of its
    posterior (reproducible for the seed, draw_key and the run's version); epsilon: that share
    of the batch drawn uniformly among problems of weight 0 or no evidence (source "explored",
    loss_weight 0). Both left out: the batch older services draw."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if fill is not None and fill not in FILL_POLICIES:
        raise ValueError(f"fill must be one of {FILL_POLICIES}, not {fill!r}")
    if epsilon is not None and not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], not {epsilon!r}")
    checked = None if lease is None else models.Lease.model_validate(lease)
    if checked is not None and draw_key is None:
        # A leased draw changes run state: a fixed key makes a retry after a lost answer
        # replay the same batch instead of leasing a second one.
        draw_key = f"lease-{uuid.uuid4()}"
    body = _without_none(
        {
            "size": size,
            "seed": seed,
            "mode": mode,
            "fill": fill,
            "draw_key": draw_key,
            "lease": None if checked is None else checked.model_dump(mode="json"),
            "skip_leased": skip_leased,
            "epsilon": epsilon,  # left out when None: the body older services know
        }
    )
    # A plain draw changes no run state (a lost answer is just drawn again); a pinned one
    # answers a repeat with the stored batch. The columnar format is asked for, the row
    # format accepted (older services, proxies that rewrite): _batch_format reads both.
    return Call(
        "POST",
        f"/v1/runs/{_seg(run)}/batches",
        models.Batch.model_validate,
        body,
        headers={"Accept": BATCH_COLUMNS_ACCEPT},
        parse_bytes=_parse_batch,
    )


def _parse_batch(response: httpx.Response) -> models.Batch:
    items, rest = parse_batch(response.content, response.headers.get("content-type", ""))
    return models.Batch.model_construct(items=items, **rest)
