"""Losses between predicted embeddings ŷ and target embeddings y, returning named terms.

* ``infonce``: bidirectional InfoNCE with a learnable temperature (paper default). Negatives are the
  whole global batch: with a ``gather_fn`` (passed per call by the trainer, e.g. ``accelerator.gather``)
  the embeddings of all processes are gathered, and gradients flow back through the local shard only
  (scaled so that DDP's gradient average equals the one-process gradient of the global batch;
  :func:`jepa_core.distributed.gather_global_batch`).
  Samples whose targets are the same text (same ``target_ids``) are one class: the target side is
  de-duplicated, so two images captioned "a red circle" are not each other's negatives.
* ``cosine``: mean ``1 - cos(ŷ, y)``.
* ``l2``: mean squared error between ŷ and y (unnormalised).

Example::

    >>> loss_fn = EmbeddingLoss(loss_type="infonce")
    >>> out = loss_fn(torch.randn(8, 16), torch.randn(8, 16))
    >>> out.loss.shape, out.prediction_to_target is not None
    (torch.Size([]), True)
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from jepa_core.distributed import GatherFn, gather_global_batch, gather_with_local_grad, scale_gradient

__all__ = [  # gather_with_local_grad and scale_gradient live in jepa_core.distributed, shared with llm_jepa
    "EmbeddingLoss", "GatherFn", "VLJEPALossOutput", "gather_with_local_grad", "info_nce", "scale_gradient", "text_ids",
]


@dataclass
class VLJEPALossOutput:
    """Named loss terms (scalars). Terms that the selected loss does not use are None.

    Attributes:
        loss: the optimised total.
        prediction_to_target: InfoNCE term, each prediction classifying its target among all targets.
        target_to_prediction: InfoNCE term, each target classifying its prediction(s) among all predictions.
        cosine_distance: mean ``1 - cos(ŷ, y)`` (always reported; the loss when ``loss_type="cosine"``).
        l2: mean squared error (the loss when ``loss_type="l2"``).
        temperature: the current InfoNCE temperature.
        num_candidates: how many distinct targets each prediction was contrasted against.
    """

    loss: torch.Tensor
    prediction_to_target: torch.Tensor | None = None
    target_to_prediction: torch.Tensor | None = None
    cosine_distance: torch.Tensor | None = None
    l2: torch.Tensor | None = None
    temperature: torch.Tensor | None = None
    num_candidates: int | None = None


def text_ids(texts: Sequence[str], device: torch.device | str | None = None) -> torch.Tensor:
    """``[N]`` int64 ids, equal exactly for equal texts (stable across processes: a BLAKE2b digest)."""
    values = [
        int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True)
        for text in texts
    ]
    return torch.tensor(values, dtype=torch.long, device=device)


def info_nce(
    predictions: torch.Tensor,
    targets: torch.Tensor,
    logit_scale: torch.Tensor,
    target_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Bidirectional InfoNCE on L2-normalised embeddings.

    Args:
        predictions: ``[N, D]`` predicted embeddings.
        targets: ``[N, D]`` target embeddings; row ``i`` is the positive of prediction ``i``.
        logit_scale: scalar ``1 / temperature``.
        target_ids: optional ``[N]`` integer ids; rows with equal ids are the same target (one class).

    Returns ``(prediction_to_target, target_to_prediction, num_distinct_targets)``. Without duplicate ids
    this is the CLIP loss: ``CE(s·P̂T̂ᵀ, arange) `` and ``CE(s·T̂P̂ᵀ, arange)``.
    """
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and targets {tuple(targets.shape)} differ")
    predictions = F.normalize(predictions.float(), dim=-1)
    targets = F.normalize(targets.float(), dim=-1)
    if target_ids is None:
        labels = torch.arange(predictions.shape[0], device=predictions.device)
        logits = logit_scale * predictions @ targets.T
        return F.cross_entropy(logits, labels), F.cross_entropy(logits.T, labels), predictions.shape[0]
    if target_ids.shape != (predictions.shape[0],):
        raise ValueError(f"target_ids must have shape [{predictions.shape[0]}], got {tuple(target_ids.shape)}")
    _, labels = torch.unique(target_ids, return_inverse=True)
    num_classes = int(labels.max()) + 1
    counts = torch.bincount(labels, minlength=num_classes).to(targets.dtype)
    class_targets = torch.zeros(num_classes, targets.shape[1], dtype=targets.dtype, device=targets.device)
    class_targets = class_targets.index_add(0, labels, targets) / counts.unsqueeze(1)
    class_targets = F.normalize(class_targets, dim=-1)
    logits = logit_scale * predictions @ class_targets.T  # [N, K]
    prediction_to_target = F.cross_entropy(logits, labels)
    # Each target class against all predictions; several predictions may be positive (mean over them).
    log_probs = F.log_softmax(logits.T, dim=-1)  # [K, N]
    positive = F.one_hot(labels, num_classes).T.to(log_probs.dtype)  # [K, N]
    target_to_prediction = -((log_probs * positive).sum(dim=1) / counts).mean()
    return prediction_to_target, target_to_prediction, num_classes


class EmbeddingLoss(nn.Module):
    """Loss between ``[N, D]`` predictions and targets, selected by ``loss_type`` (``infonce|cosine|l2``).

    Holds the learnable InfoNCE temperature (as ``log(1/temperature)``). On several processes the trainer
    passes ``gather_fn`` and ``rank`` with each call so that InfoNCE negatives span the global batch.
    """

    def __init__(
        self,
        *,
        loss_type: str = "infonce",
        initial_temperature: float = 0.07,
        learnable_temperature: bool = True,
        max_logit_scale: float = 100.0,
    ) -> None:
        super().__init__()
        if loss_type not in ("infonce", "cosine", "l2"):
            raise ValueError(f"loss_type must be infonce, cosine or l2; got {loss_type!r}")
        self.loss_type = loss_type
        # Shape [1], not a scalar: FSDP2 (fully_shard) refuses 0-d parameters.
        self.log_logit_scale = nn.Parameter(
            torch.full((1,), math.log(1.0 / initial_temperature)), requires_grad=learnable_temperature
        )
        self.max_logit_scale = max_logit_scale

    @property
    def logit_scale(self) -> torch.Tensor:
        """``1 / temperature`` as a 0-d tensor."""
        return self.log_logit_scale.exp().clamp(max=self.max_logit_scale).squeeze(0)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "log_logit_scale"
        if key in state_dict and state_dict[key].dim() == 0:  # saved before it became shape [1]
            state_dict[key] = state_dict[key].reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(
        self,
        predictions: torch.Tensor,
        targets: torch.Tensor,
        target_ids: torch.Tensor | None = None,
        *,
        gather_fn: GatherFn | None = None,
        rank: int = 0,
    ) -> VLJEPALossOutput:
        """Named loss terms of ``[N, D]`` predictions and targets.

        ``gather_fn`` (e.g. ``accelerator.gather``) and this process's ``rank``: InfoNCE negatives come from
        every process's rows (None: this batch only); cosine and L2 ignore them.
        """
        cosine_distance = (1 - F.cosine_similarity(predictions.float(), targets.float(), dim=-1)).mean()
        l2 = F.mse_loss(predictions.float(), targets.float())
        if self.loss_type == "cosine":
            return VLJEPALossOutput(loss=cosine_distance, cosine_distance=cosine_distance, l2=l2.detach())
        if self.loss_type == "l2":
            return VLJEPALossOutput(loss=l2, cosine_distance=cosine_distance.detach(), l2=l2)
        if gather_fn is not None:
            predictions, targets = gather_global_batch(predictions, targets, gather_fn, rank)
            if target_ids is not None:
                target_ids = gather_fn(target_ids.contiguous())
        scale = self.logit_scale
        p2t, t2p, candidates = info_nce(predictions, targets, scale, target_ids)
        return VLJEPALossOutput(
            loss=(p2t + t2p) / 2,
            prediction_to_target=p2t,
            target_to_prediction=t2p,
            cosine_distance=cosine_distance.detach(),
            l2=l2.detach(),
            temperature=(1.0 / scale).detach(),
            num_candidates=candidates,
        )
