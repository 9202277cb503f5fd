"""Helpers shared by the inference APIs of VL-JEPA and the dual-encoder baseline (batched, no grad)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TextRanking:
    """Texts ranked for each image.

    Attributes:
        scores: ``[N, M]`` cosine similarity of image ``i`` and text ``j``.
        indices: ``[N, M]`` text indices sorted by decreasing score.
    """

    scores: torch.Tensor
    indices: torch.Tensor


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no grad inside; the previous train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def batch_ranges(total: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, total, batch_size):
        yield slice(start, min(start + batch_size, total))


def normalise_candidates(candidates: Sequence[str] | Sequence[Sequence[str]], count: int) -> list[list[str]]:
    """One candidate list per sample: a flat list of strings is shared by all ``count`` samples."""
    if len(candidates) and all(isinstance(c, str) for c in candidates):
        return [list(candidates)] * count  # type: ignore[list-item]
    if len(candidates) != count:
        raise ValueError(f"got {len(candidates)} candidate lists for {count} samples")
    lists = [list(c) for c in candidates]
    for row, options in enumerate(lists):
        if not options:
            raise ValueError(f"sample {row}: empty candidate list")
    return lists


def score_candidates(
    predictions: torch.Tensor, candidates: list[list[str]], embed_texts: Callable[[list[str]], torch.Tensor]
) -> torch.Tensor:
    """``[N, C]`` cosine scores of each sample's candidates; ragged lists are padded with ``-inf``.

    Each distinct candidate string is embedded once.
    """
    unique = list(dict.fromkeys(text for options in candidates for text in options))
    table = F.normalize(embed_texts(unique).float(), dim=-1)
    index = {text: i for i, text in enumerate(unique)}
    all_scores = F.normalize(predictions.float(), dim=-1) @ table.T  # [N, U]
    width = max(len(options) for options in candidates)
    scores = torch.full((len(candidates), width), float("-inf"))
    for row, options in enumerate(candidates):
        columns = torch.tensor([index[text] for text in options])
        scores[row, : len(options)] = all_scores[row, columns].cpu()
    return scores


def rank(image_embeddings: torch.Tensor, text_embeddings: torch.Tensor) -> TextRanking:
    scores = F.normalize(image_embeddings.float(), dim=-1) @ F.normalize(text_embeddings.float(), dim=-1).T
    scores = scores.cpu()
    return TextRanking(scores=scores, indices=scores.argsort(dim=1, descending=True))


class TextCandidatesMixin:
    """``embed_texts`` and ``answer`` for models with a ``y_encoder`` and an ``answer_scores`` method (VL-JEPA
    and the dual-encoder baseline score candidates differently but pick and embed texts the same way)."""

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
        """``[M, E]`` L2-normalised Y-encoder embeddings of texts, on the CPU."""
        outputs = []
        with evaluating(self):
            for part in batch_ranges(len(texts), batch_size):
                outputs.append(F.normalize(self.y_encoder(list(texts[part])).float(), dim=-1).cpu())
        return torch.cat(outputs) if outputs else torch.empty(0, self.config.embedding_dim)

    def answer(
        self,
        images: Sequence,
        questions: Sequence[str],
        candidates: Sequence[str] | Sequence[Sequence[str]],
        *,
        batch_size: int = 32,
    ) -> list[str]:
        """The best candidate answer for each (image, question)."""
        lists = normalise_candidates(candidates, len(images))
        best = self.answer_scores(images, questions, lists, batch_size=batch_size).argmax(dim=1)
        return [options[int(i)] for options, i in zip(lists, best)]
