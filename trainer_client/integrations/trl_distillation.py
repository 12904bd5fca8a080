"""DistillationTrainer with per-sample PACED loss weights (the documented override)."""

from __future__ import annotations

from typing import Any

import torch
from trl import DistillationTrainer


class PacedDistillationTrainer(DistillationTrainer):
    """DistillationTrainer whose per-sample divergence is multiplied by its PACED scale.

    The documented override: TRL's divergence is one fused sum over all tokens, so each
    sample's loss is computed on its own and combined as sum_i s_i * loss_i (with
    num_items_in_batch the token count of the global batch, as TRL divides it). Samples with
    s_i = 0 cost nothing. The scale s = loss_weight / mean loss_weight of the draw comes from
    PacedCurriculum.attach(); use a uniform draw (mode="uniform") — with a proportional one
    the weighting is already in the sampling and every drawn scale is 1."""

    paced_scales: dict[str, float] | None = None
    paced_problem_id_column = "problem_id"

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        # transformers declares the attribute None until this call has filled it in.
        columns: list[str] = list(self._signature_columns or [])
        if self.paced_problem_id_column not in columns:
            self._signature_columns = [*columns, self.paced_problem_id_column]  # type: ignore[assignment]

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        scales = self.paced_scales or {}
        column = self.paced_problem_id_column
        output["paced_scale"] = torch.tensor(
            [float(scales.get(str(x.get(column)), 1.0)) for x in inputs],
            device=self.accelerator.device,
        )
        return output

    def _compute_loss(self, unwrapped_student, inputs, num_items_in_batch):
        scale = inputs.get("paced_scale")
        if scale is None or bool(torch.all(scale == 1.0)):
            return super()._compute_loss(unwrapped_student, inputs, num_items_in_batch)
        rows = [i for i in range(len(scale)) if float(scale[i]) != 0.0]
        if not rows:  # keep a graph for backward (and DDP) without changing the parameters
            loss, entropy, _ = super()._compute_loss(
                unwrapped_student, _row(inputs, 0, len(scale)), num_items_in_batch
            )
            return loss * 0.0, entropy * 0.0, torch.zeros((), dtype=torch.long)
        total, entropy_sum, valid = 0.0, 0.0, 0
        for i in rows:
            loss, entropy, n_valid = super()._compute_loss(
                unwrapped_student, _row(inputs, i, len(scale)), num_items_in_batch
            )
            if num_items_in_batch is None:  # per-row means: average them, weighted
                loss = loss / len(scale)
            total = total + scale[i] * loss
            entropy_sum = entropy_sum + entropy
            valid = valid + n_valid
        return total, entropy_sum, valid


def _row(inputs: dict[str, Any], i: int, batch: int) -> dict[str, Any]:
    """Sample i of a micro-batch: every per-sample tensor or list sliced, the rest as is."""
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == batch:
            out[key] = value[i : i + 1]
        elif isinstance(value, list) and len(value) == batch:
            out[key] = value[i : i + 1]
        else:
            out[key] = value
    return out
