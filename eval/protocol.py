"""The inference API every evaluated model exposes, so one runner scores VL-JEPA and the baseline alike.

A model is evaluated through three methods (and a fourth, optional one for captioning). Nothing in
``eval`` imports model code: any object with these methods works, including the tiny fake models in
the tests.

Example::

    from eval.protocol import EmbeddingModel, supports_captioning

    assert isinstance(model, EmbeddingModel)          # structural check (runtime_checkable)
    image_emb = model.embed_images(images)            # [N, D]
    text_emb = model.embed_texts(["a red circle"])    # [1, D]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch
from PIL import Image


@runtime_checkable
class EmbeddingModel(Protocol):
    """A model that places images, texts and (image, question) pairs in one embedding space.

    For VL-JEPA, ``embed_images`` is the predictor's output for an empty query (the predicted target
    embedding of the image) and ``embed_texts`` is the Y-encoder; for a dual encoder, the two towers.
    Embeddings need not be normalised: every metric L2-normalises them.
    """

    def embed_images(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> torch.Tensor:
        """``[N, D]`` embeddings of ``N`` images."""
        ...

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
        """``[M, D]`` embeddings of ``M`` texts."""
        ...

    def answer_scores(
        self,
        images: Sequence[Image.Image],
        questions: Sequence[str],
        candidates: Sequence[Sequence[str]],
        *,
        batch_size: int = 32,
    ) -> torch.Tensor:
        """``[N, C]`` similarity of each candidate answer for each (image, question) pair.

        ``C`` is the longest candidate list; shorter (ragged) lists are padded with ``-inf``.
        """
        ...


@runtime_checkable
class CaptionGenerator(Protocol):
    """A model with a text decoder: the captioning task needs it."""

    def generate_captions(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> list[str]:
        """One caption per image."""
        ...


class MissingCapabilityError(TypeError):
    """The model lacks a method that the requested evaluation task needs."""


def supports_captioning(model: Any) -> bool:
    """Whether ``model`` has a callable ``generate_captions`` method."""
    return callable(getattr(model, "generate_captions", None))


def check_embedding_model(model: Any, *, task: str) -> None:
    """Raise :class:`MissingCapabilityError` naming the missing methods when ``model`` cannot run ``task``."""
    needed = ("embed_images", "embed_texts", "answer_scores")
    missing = [name for name in needed if not callable(getattr(model, name, None))]
    if missing:
        raise MissingCapabilityError(
            f"{type(model).__name__} cannot run the {task} evaluation: it has no {', '.join(missing)} "
            "method(s). Evaluated models must implement eval.protocol.EmbeddingModel."
        )
