"""Zero-shot classification: class embeddings from averaged prompt templates, top-k accuracy.

Each class name is put into every template (``"a photo of a {}."``), each filled prompt is embedded and
L2-normalised, the prompts of one class are averaged and the mean is normalised again. Images are
classified by cosine similarity with the class embeddings.

Example::

    >>> import torch
    >>> scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5]])
    >>> topk_accuracy(scores, [0, 1], ks=(1, 2))
    {'top1': 0.5, 'top2': 1.0}
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# Scores within this much of the true class's count as ties (float32 rounding), and ties count as misses.
TIE_TOLERANCE = 1e-5

DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a drawing of a {}.",
    "a rendering of a {}.",
)


def fill_templates(class_names: Sequence[str], templates: Sequence[str]) -> list[str]:
    """Prompts in class-major order: ``[class0/template0, class0/template1, ..., class1/template0, ...]``."""
    if not class_names:
        raise ValueError("class_names is empty: zero-shot classification needs at least one class")
    if not templates:
        raise ValueError("templates is empty: give at least one prompt template such as 'a photo of a {}.'")
    for template in templates:
        if template.count("{}") != 1:
            raise ValueError(f"template {template!r} must contain exactly one '{{}}' for the class name")
    return [template.format(name) for name in class_names for template in templates]


def average_template_embeddings(prompt_emb: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``[C * T, D]`` prompt embeddings (class-major) -> ``[C, D]`` unit-norm class embeddings."""
    if prompt_emb.ndim != 2 or prompt_emb.shape[0] % num_classes:
        raise ValueError(
            f"expected [num_classes * num_templates, D] prompt embeddings for {num_classes} classes, "
            f"got shape {tuple(prompt_emb.shape)}"
        )
    per_prompt = F.normalize(prompt_emb.detach().float(), dim=-1)
    per_class = per_prompt.reshape(num_classes, -1, per_prompt.shape[-1]).mean(dim=1)
    return F.normalize(per_class, dim=-1)


def class_embeddings(
    embed_texts: Callable[..., torch.Tensor],
    class_names: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    *,
    batch_size: int = 32,
) -> torch.Tensor:
    """``[C, D]`` class embeddings from a text encoder (e.g. ``model.embed_texts``)."""
    prompts = fill_templates(class_names, templates)
    prompt_emb = embed_texts(prompts, batch_size=batch_size)
    return average_template_embeddings(torch.as_tensor(prompt_emb).cpu(), len(class_names))


def class_scores(image_emb: torch.Tensor | np.ndarray, class_emb: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``[N, C]`` cosine similarity of ``[N, D]`` images with ``[C, D]`` classes."""
    images = F.normalize(torch.as_tensor(image_emb).detach().float(), dim=-1)
    classes = F.normalize(torch.as_tensor(class_emb).detach().float().to(images.device), dim=-1)
    return images @ classes.T


def label_ranks(
    scores: torch.Tensor | np.ndarray,
    labels: Sequence[int] | torch.Tensor | np.ndarray,
    *,
    tie_tolerance: float = TIE_TOLERANCE,
) -> torch.Tensor:
    """``[N]`` rank of each true label (0 = top): the number of *other* classes scoring at least the true
    class's score minus ``tie_tolerance``. Ties count against the model, so a collapsed model whose
    class embeddings are all equal scores 0, not 100%."""
    scores = torch.as_tensor(scores).detach().float()
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long).reshape(-1).to(scores.device)
    if scores.ndim != 2 or scores.shape[0] != labels.numel() or scores.shape[0] == 0:
        raise ValueError(
            f"scores must be [N, C] with N = len(labels) > 0, got {tuple(scores.shape)} "
            f"and {labels.numel()} labels"
        )
    bad = (labels < 0) | (labels >= scores.shape[1])
    if bad.any():
        row = int(torch.nonzero(bad)[0])
        raise ValueError(
            f"label {int(labels[row])} of example {row} is not one of the {scores.shape[1]} classes"
        )
    true_scores = scores.gather(1, labels[:, None])
    # The true class always passes the test against its own score: subtract it.
    return (scores >= true_scores - tie_tolerance).sum(dim=1) - 1


def accuracy_from_ranks(
    ranks: Sequence[int] | torch.Tensor | np.ndarray, ks: Sequence[int] = (1, 5)
) -> dict[str, float]:
    """``{"top{k}": fraction of ranks < k}``."""
    ranks = torch.as_tensor(np.asarray(ranks), dtype=torch.long).reshape(-1)
    if ranks.numel() == 0:
        raise ValueError("no examples: accuracy is undefined")
    if not ks or any(int(k) < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {tuple(ks)}")
    return {f"top{int(k)}": float((ranks < int(k)).double().mean()) for k in ks}


def topk_accuracy(
    scores: torch.Tensor | np.ndarray,
    labels: Sequence[int] | torch.Tensor | np.ndarray,
    ks: Sequence[int] = (1, 5),
) -> dict[str, float]:
    """``{"top{k}": fraction}``: how often the label is among the ``k`` highest scores.

    Ties count as misses (see :func:`label_ranks`). A ``k`` at or above the number of classes gives 1.0.
    """
    return accuracy_from_ranks(label_ranks(scores, labels), ks)
