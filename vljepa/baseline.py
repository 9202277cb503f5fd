"""The dual-encoder baseline (CLIP / LiT style) with the same X- and Y-encoders as VL-JEPA.

Image side: X-encoder tokens, mean-pooled, LayerNorm + linear projection. Text side: the Y-encoder and its
projection. Trained with the same InfoNCE. For VQA there is no predictor to condition on the question, so
the *text* carries it: ``text_template.format(question=..., answer=...)`` is scored against the image.
The inference API matches :class:`vljepa.modeling.VLJEPAModel`, so the same eval runners score both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import field

import torch
from PIL import Image
from torch import nn
from transformers import PreTrainedConfig

from vljepa.encoders.x_encoder import VisualInput, XEncoder
from vljepa.encoders.y_encoder import YEncoder
from vljepa.inference import TextRanking, normalise_candidates, rank
from vljepa.losses import GatherFn, text_ids
from vljepa.modeling import VLJEPAOutput
from vljepa.persistence import register_auto_class
from vljepa.shared_space import SharedSpaceModel, build_x_encoder, build_y_encoder, embedding_loss


class DualEncoderConfig(PreTrainedConfig):
    """Configuration of :class:`DualEncoderModel` (saved as ``config.json``).

    Example::

        >>> DualEncoderConfig(embedding_dim=256).text_template
        '{question} {answer}'
    """

    model_type = "vljepa-dual-encoder"

    x_encoder_id: str = field(
        default="timm/tf_efficientnet_lite0.in1k", metadata={"help": "Vision backbone (AutoModel), frozen."}
    )
    x_encoder_revision: str | None = field(default=None, metadata={"help": "Revision of the X-encoder."})
    x_encoder_processor_overrides: dict = field(
        default_factory=dict, metadata={"help": "Deep-merged into the image-processor config (see VLJEPAConfig)."}
    )
    x_encoder_token_selection: str = field(default="patch", metadata={"help": "'patch' or 'all' tokens."})
    x_encoder_pooled_grid_size: int | None = field(
        default=None, metadata={"help": "Average-pool the token grid before the mean (keeps the cache small)."}
    )
    x_encoder_feature_layer: int | None = field(
        default=None, metadata={"help": "Use hidden_states[i] instead of last_hidden_state (see VLJEPAConfig)."}
    )
    y_encoder_id: str = field(
        default="sentence-transformers/all-MiniLM-L6-v2", metadata={"help": "Sentence-transformers text encoder."}
    )
    y_encoder_revision: str | None = field(default=None, metadata={"help": "Revision of the Y-encoder."})
    y_encoder_frozen: bool = field(default=False, metadata={"help": "Freeze the text encoder (LiT: unlocked)."})
    embedding_dim: int = field(default=384, metadata={"help": "Dimension of the shared embedding space."})
    text_template: str = field(
        default="{question} {answer}",
        metadata={"help": "How a VQA (question, answer) pair becomes the text scored against the image."},
    )
    initial_temperature: float = field(default=0.07, metadata={"help": "Initial InfoNCE temperature."})
    learnable_temperature: bool = field(default=True, metadata={"help": "Learn the InfoNCE temperature."})
    max_logit_scale: float = field(default=100.0, metadata={"help": "Upper clamp of 1/temperature."})
    x_encoder_dim: int | None = field(default=None, metadata={"help": "Width of visual tokens (set on build)."})
    y_encoder_dim: int | None = field(default=None, metadata={"help": "Y-encoder width (set on build)."})

    def __post_init__(self, **kwargs):
        if self.x_encoder_token_selection not in ("patch", "all"):
            raise ValueError(f"x_encoder_token_selection must be 'patch' or 'all', got {self.x_encoder_token_selection!r}")
        if "{question}" not in self.text_template or "{answer}" not in self.text_template:
            raise ValueError(f"text_template must contain {{question}} and {{answer}}, got {self.text_template!r}")
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
        super().__post_init__(**kwargs)


class DualEncoderModel(SharedSpaceModel):
    """Image tower ``[N] -> [N, E]`` and text tower ``[M] -> [M, E]`` trained with InfoNCE.

    ``forward`` takes the same arguments as :meth:`VLJEPAModel.forward`; a non-empty query is folded into the
    target text with ``text_template``.

    Example::

        >>> model = DualEncoderModel.from_config(DualEncoderConfig())                   # doctest: +SKIP
        >>> model.answer([image], ["what color is the shape?"], ["red", "blue"])
    """

    config_class = DualEncoderConfig

    def __init__(self, config: DualEncoderConfig, *, x_encoder: XEncoder, y_encoder: YEncoder) -> None:
        super().__init__()
        self.config = config
        self.x_encoder = x_encoder
        self.y_encoder = y_encoder
        self.image_projection = nn.Sequential(
            nn.LayerNorm(x_encoder.hidden_size), nn.Linear(x_encoder.hidden_size, config.embedding_dim)
        )
        self.loss_fn = embedding_loss(config, loss_type="infonce")

    @classmethod
    def from_config(cls, config: DualEncoderConfig) -> DualEncoderModel:
        x_encoder = build_x_encoder(config, frozen=True)
        y_encoder = build_y_encoder(config)
        return cls(config, x_encoder=x_encoder, y_encoder=y_encoder)

    def frozen_prefixes(self) -> list[str]:
        prefixes = ["x_encoder."]
        if self.config.y_encoder_frozen:
            prefixes.append("y_encoder.encoder.")
        return prefixes

    @property
    def device(self) -> torch.device:
        return self.image_projection[1].weight.device

    def compose(self, queries: Sequence[str], answers: Sequence[str]) -> list[str]:
        """The texts of (query, answer) pairs: the answer alone when the query is empty (captions)."""
        return [
            answer if not query else self.config.text_template.format(question=query, answer=answer)
            for query, answer in zip(queries, answers)
        ]

    def image_embeddings(self, visual_tokens: torch.Tensor, visual_mask: torch.Tensor) -> torch.Tensor:
        """``[B, E]`` from visual tokens ``[B, T, x_dim]`` (masked mean, then projection)."""
        weights = visual_mask.to(visual_tokens.dtype).unsqueeze(-1)
        pooled = (visual_tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.image_projection(pooled.to(self.image_projection[1].weight.dtype))

    def forward(
        self,
        *,
        queries: Sequence[str],
        images: Sequence[VisualInput] | None = None,
        pixel_values: torch.Tensor | None = None,
        visual_tokens: torch.Tensor | None = None,
        visual_mask: torch.Tensor | None = None,
        targets: Sequence[str] | None = None,
        gather_fn: GatherFn | None = None,
        rank: int = 0,
    ) -> VLJEPAOutput:
        """Same contract as :meth:`VLJEPAModel.forward`; ``predicted_embeddings`` are image embeddings."""
        visual_tokens, visual_mask = self.visual_inputs(images, pixel_values, visual_tokens, visual_mask)
        image = self.image_embeddings(visual_tokens, visual_mask)
        if targets is None:
            return VLJEPAOutput(predicted_embeddings=image)
        texts = self.compose(queries, targets)
        text = self.y_encoder(texts)
        terms = self.loss_fn(image, text, text_ids(texts, device=self.device), gather_fn=gather_fn, rank=rank)
        return VLJEPAOutput(predicted_embeddings=image, target_embeddings=text, loss=terms.loss, loss_terms=terms)

    # ------------------------------------------------------------------------------------------------
    def embed_images(self, images: Sequence[VisualInput], *, batch_size: int = 32) -> torch.Tensor:
        """``[N, E]`` normalised image embeddings."""
        return self.embed_in_batches(images, [""] * len(images), batch_size=batch_size)

    def predict(
        self, images: Sequence[VisualInput], queries: Sequence[str] | None = None, *, batch_size: int = 32
    ) -> torch.Tensor:
        """The image embedding (a dual encoder cannot condition the image side on a query)."""
        return self.embed_images(images, batch_size=batch_size)

    def answer_scores(
        self,
        images: Sequence[VisualInput],
        questions: Sequence[str],
        candidates: Sequence[str] | Sequence[Sequence[str]],
        *,
        batch_size: int = 32,
    ) -> torch.Tensor:
        """``[N, C]`` cosine of the image with ``text_template(question, candidate)`` (ragged: ``-inf``)."""
        lists = normalise_candidates(candidates, len(images))
        if len(questions) != len(images):
            raise ValueError(f"{len(images)} images but {len(questions)} questions")
        image = self.embed_images(images, batch_size=batch_size)
        pairs = [self.compose([q] * len(options), options) for q, options in zip(questions, lists)]
        unique = list(dict.fromkeys(text for texts in pairs for text in texts))
        table = self.embed_texts(unique, batch_size=batch_size)
        index = {text: i for i, text in enumerate(unique)}
        scores = torch.full((len(lists), max(len(o) for o in lists)), float("-inf"))
        for row, texts in enumerate(pairs):
            rows = table[torch.tensor([index[t] for t in texts])]
            scores[row, : len(texts)] = rows @ image[row]
        return scores

    def rank_texts(
        self,
        images: Sequence[Image.Image],
        texts: Sequence[str],
        *,
        queries: Sequence[str] | None = None,
        batch_size: int = 32,
    ) -> TextRanking:
        """Rank ``texts`` for each image. A dual encoder cannot condition on a query: non-empty ones raise."""
        if queries is not None and any(queries):
            raise ValueError("DualEncoderModel.rank_texts cannot condition the image side on a query")
        return rank(self.embed_images(images, batch_size=batch_size), self.embed_texts(texts, batch_size=batch_size))


register_auto_class(DualEncoderConfig, DualEncoderModel)  # AutoConfig / AutoModel (see vljepa.persistence)
