"""A tiny deterministic model and datasets for testing the evaluation runners without any weights.

:class:`ColourModel` implements :class:`eval.protocol.EmbeddingModel` (and ``generate_captions``) by
looking at colours: an image embeds as its similarity to a fixed palette, a text that names a palette
colour embeds as that colour, and any other text as a vector derived from its SHA-256 hash. It is
deterministic across processes and runs, so it doubles as a reference for the distributed tests.

Example::

    model = ColourModel()
    dataset = colour_captioning_dataset(7)
    run_retrieval(model, dataset, output_dir="runs/eval-smoke")
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (240, 230, 40),
    "cyan": (40, 220, 230),
    "magenta": (220, 40, 210),
    "white": (250, 250, 250),
    "black": (10, 10, 10),
}
COLOUR_NAMES: tuple[str, ...] = tuple(PALETTE)
HASH_DIMS = 8
EMBED_DIM = len(PALETTE) + HASH_DIMS


def _hash_vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng(seed).standard_normal(EMBED_DIM)


class ColourModel:
    """Embeds images by colour and texts by the colour word they contain. Output shapes: ``[N, 16]``.

    ``answer_scores`` ignores the question and scores each candidate by its text embedding's cosine
    with the image embedding; ``generate_captions`` names the closest palette colour.
    """

    def __init__(self, *, sharpness: float = 2000.0) -> None:
        self.sharpness = sharpness
        self._palette = np.array(list(PALETTE.values()), dtype=np.float64)

    def _image_vector(self, image: Image.Image) -> np.ndarray:
        mean_colour = np.asarray(image.convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(axis=0)
        distances = ((self._palette - mean_colour) ** 2).sum(axis=1)
        vector = np.zeros(EMBED_DIM)
        vector[: len(PALETTE)] = np.exp(-(distances - distances.min()) / self.sharpness)
        return vector

    def _text_vector(self, text: str) -> np.ndarray:
        words = text.lower().replace(".", " ").replace(",", " ").split()
        for position, name in enumerate(COLOUR_NAMES):
            if name in words:
                vector = np.zeros(EMBED_DIM)
                vector[position] = 1.0
                vector[len(PALETTE) :] = 0.01 * _hash_vector(text)[len(PALETTE) :]
                return vector
        return _hash_vector(text)

    def embed_images(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> torch.Tensor:
        return torch.tensor(np.stack([self._image_vector(image) for image in images]), dtype=torch.float32)

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 32) -> torch.Tensor:
        return torch.tensor(np.stack([self._text_vector(text) for text in texts]), dtype=torch.float32)

    def answer_scores(
        self,
        images: Sequence[Image.Image],
        questions: Sequence[str],
        candidates: Sequence[Sequence[str]],
        *,
        batch_size: int = 32,
    ) -> torch.Tensor:
        width = max(len(row) for row in candidates)
        scores = torch.full((len(images), width), -torch.inf)
        image_emb = torch.nn.functional.normalize(self.embed_images(images), dim=-1)
        for row, row_candidates in enumerate(candidates):
            if row_candidates:
                text_emb = torch.nn.functional.normalize(self.embed_texts(row_candidates), dim=-1)
                scores[row, : len(row_candidates)] = text_emb @ image_emb[row]
        return scores

    def generate_captions(self, images: Sequence[Image.Image], *, batch_size: int = 32) -> list[str]:
        names = [COLOUR_NAMES[int(np.argmax(self._image_vector(image)[: len(PALETTE)]))] for image in images]
        return [f"a square that is {name}" for name in names]


class EmbeddingOnlyColourModel:
    """:class:`ColourModel` without ``generate_captions`` (like a model without a text decoder)."""

    def __init__(self) -> None:
        self._model = ColourModel()
        self.embed_images = self._model.embed_images
        self.embed_texts = self._model.embed_texts
        self.answer_scores = self._model.answer_scores


def colour_image(index: int, size: int = 8) -> Image.Image:
    """A solid image of palette colour ``index % 8``, nudged by ``index`` so images differ."""
    base = np.array(PALETTE[COLOUR_NAMES[index % len(PALETTE)]], dtype=np.int64)
    nudge = (index // len(PALETTE)) * 3
    colour = tuple(int(v) for v in np.clip(base + np.array([nudge, -nudge, nudge]), 0, 255))
    return Image.new("RGB", (size, size), colour)


def colour_captioning_dataset(num_images: int) -> list[dict[str, Any]]:
    """Captioning / retrieval rows: 1 to 3 captions per image (ragged), integer ``image_id``."""
    rows = []
    for index in range(num_images):
        name = COLOUR_NAMES[index % len(PALETTE)]
        captions = [f"a {name} square", f"a square that is {name}", f"{name} colour everywhere"]
        rows.append(
            {"image": colour_image(index), "captions": captions[: 1 + index % 3], "image_id": 1000 + index}
        )
    return rows


def colour_vqa_dataset(num_questions: int, *, with_candidates: bool = True) -> list[dict[str, Any]]:
    """VQA rows about the image's colour; every third row's annotators disagree."""
    rows = []
    for index in range(num_questions):
        name = COLOUR_NAMES[index % len(PALETTE)]
        other = COLOUR_NAMES[(index + 1) % len(PALETTE)]
        answers = [name] * 10 if index % 3 else [name] * 2 + [other] * 8
        rows.append(
            {
                "image": colour_image(index),
                "question": "what colour is the square?",
                "answers": answers,
                "question_type": "what color" if index % 2 else "what is the color",
                "candidates": list(COLOUR_NAMES[: 3 + index % 4]) if with_candidates else [],
                "question_id": f"q{index}",
            }
        )
    return rows


def colour_classification_dataset(num_images: int) -> list[dict[str, Any]]:
    """Zero-shot rows: ``label`` indexes :data:`COLOUR_NAMES`."""
    return [{"image": colour_image(index), "label": index % len(PALETTE)} for index in range(num_images)]
