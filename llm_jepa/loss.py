"""Loss terms of LLM-JEPA: the next-token loss and the JEPA distance d(prediction, target).

All functions take plain tensors and return a scalar tensor; they know nothing of models or trainers.

>>> import torch
>>> pred, target = torch.randn(4, 8), torch.randn(4, 8)
>>> jepa_distance(pred, target, "cosine").shape
torch.Size([])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from jepa_core.distributed import GatherFn, gather_global_batch

_NO_LABELS = "the batch has no labelled (assistant) tokens; check the chat template and data"


def lm_loss_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions ``t`` whose next token is labelled in at least one row: ``(B, T) -> (K,)``, sorted.

    Passed as the model's ``logits_to_keep``, so the output head and the softmax run only where the loss
    looks (the answer spans; on regex-synth batches about half the positions instead of all of them), with
    any model-specific logit processing kept. :func:`causal_lm_loss` with ``positions`` takes the same terms.
    """
    positions = (labels[:, 1:] != -100).any(dim=0).nonzero().squeeze(-1)
    if positions.numel() == 0:
        raise ValueError(_NO_LABELS)
    return positions


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled positions.

    Args:
        logits: ``(B, T, V)``; position ``t`` predicts token ``t + 1``. With ``positions``: ``(B, K, V)``, the
            logits at those positions only.
        labels: ``(B, T)`` token ids, -100 where no loss is taken.
        positions: ``(K,)`` positions the logits were kept at (:func:`lm_loss_positions`), or None.
    """
    if positions is None:
        shift_logits = logits[:, :-1, :].float()
        shift_labels = labels[:, 1:].to(logits.device)
    else:
        shift_logits = logits.float()
        shift_labels = labels.to(logits.device)[:, positions.to(logits.device) + 1]
    if not (shift_labels != -100).any():
        raise ValueError(_NO_LABELS)
    return F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]), shift_labels.reshape(-1), ignore_index=-100
    )


def cosine_distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_b (1 - cos(prediction_b, target_b))``; inputs ``(B, H)``."""
    return (1.0 - F.cosine_similarity(prediction.float(), target.float(), dim=-1)).mean()


def l2_distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_b ||prediction_b - target_b||_2``; inputs ``(B, H)``."""
    return torch.linalg.vector_norm(prediction.float() - target.float(), ord=2, dim=-1).mean()


def mse_distance(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean_{b,h} (prediction - target)^2``; inputs ``(B, H)``."""
    return F.mse_loss(prediction.float(), target.float())


def infonce_distance(
    prediction: torch.Tensor,
    target: torch.Tensor,
    temperature: float = 0.07,
    *,
    gather_fn: GatherFn | None = None,
    rank: int = 0,
) -> torch.Tensor:
    """InfoNCE: each prediction must pick its own target among the batch's targets.

    ``mean_b -log softmax_j(cos(prediction_b, target_j) / temperature)[b]``; inputs ``(B, H)``. Without
    ``gather_fn`` the negatives are the other rows of this batch (with B = 1 the loss is 0). With
    ``gather_fn`` (e.g. ``accelerator.gather``; every process the same B) the predictions and targets of all
    processes form the global batch: each process computes the global loss, with gradients flowing to its own
    rows scaled by the world size, so that DDP's gradient average equals the one-process gradient.
    """
    if gather_fn is not None:
        prediction, target = gather_global_batch(prediction, target, gather_fn, rank)
    prediction = F.normalize(prediction.float(), dim=-1)
    target = F.normalize(target.float(), dim=-1)
    logits = prediction @ target.T / temperature
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def jepa_distance(
    prediction: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    *,
    temperature: float = 0.07,
    gather_fn: GatherFn | None = None,
    rank: int = 0,
) -> torch.Tensor:
    """d(Pred(Enc(Text)), Enc(Code)) for ``kind`` in cosine / l2 / mse / infonce; inputs ``(B, H)``.

    ``gather_fn`` / ``rank`` make infonce's negatives the global batch across processes (see
    :func:`infonce_distance`); the per-example distances ignore them.
    """
    if prediction.shape != target.shape or prediction.ndim != 2:
        raise ValueError(f"prediction and target must both be (B, H); got {tuple(prediction.shape)} and "
                         f"{tuple(target.shape)}")
    if kind == "cosine":
        return cosine_distance(prediction, target)
    if kind == "l2":
        return l2_distance(prediction, target)
    if kind == "mse":
        return mse_distance(prediction, target)
    if kind == "infonce":
        return infonce_distance(prediction, target, temperature, gather_fn=gather_fn, rank=rank)
    raise ValueError(f"unknown jepa_loss {kind!r}; choose cosine, l2, mse or infonce")
